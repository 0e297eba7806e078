"""The contract between a loaded model and its users (the HTTP server and the profiler).

An engine is a model loaded at one precision on one device/tier. The server
batches requests into calls of these methods; the profiler times them and
compares their outputs with the fp32 reference. Engines are synchronous and
not thread-safe: the server runs them on one worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from tierwise_operator.api import Architecture, Precision, Task, TierKind

from .chat import ChatMessage


@dataclass(frozen=True)
class EngineInfo:
    """What is loaded, where, and what it holds."""

    model_name: str
    """The id clients pass as `model` (e.g. `all-minilm-l6-v2`)."""
    task: Task
    architecture: Architecture
    precision: Precision
    device: str
    """`cpu` or `cuda[:N]`."""
    tier: TierKind
    max_tokens: int
    """Longest input (prompt) the model accepts, in tokens."""
    weight_bytes: int
    """Bytes the weights take at this precision (quantization scales included)."""
    parameters: int
    embedding_dim: int | None = None
    """Embeddings: length of each vector."""
    kv_cache_bytes_per_token: int | None = None
    """Decoders: KV-cache bytes one token of context costs at this precision."""
    calibration: str | None = None
    """int4: how the codes were fitted, `gptq` or `rtn` (round-to-nearest)."""


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens for one sequence; temperature 0 is greedy and deterministic."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop_token_ids: frozenset[int] = field(default_factory=frozenset)
    """Token ids that end the sequence (EOS is always one)."""
    adapter: str | None = None
    """The LoRA adapter the sequence decodes with (None: the base model)."""


@runtime_checkable
class EmbeddingEngine(Protocol):
    info: EngineInfo

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, special tokens included, before truncation."""
        ...

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """`[B, D]` float32 on the CPU, L2-normalised, one row per text."""
        ...


@runtime_checkable
class GenerationEngine(Protocol):
    info: EngineInfo
    eos_token_ids: frozenset[int]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (BOS included where the model expects it)."""
        ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def logits(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """`[B, S, V]` float32 next-token logits for each position (right-padded batch)."""
        ...

    def generate(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> Iterator[list[int | None]]:
        """Decode all prompts together; each step yields the next token id of every
        sequence, or None for sequences that have finished (stop token or max_tokens).
        A stop token is yielded once, on the step it is chosen, so callers can tell a
        "stop" finish from a "length" one; it is not text (detokenize skips special tokens).
        Raises InputError (a ValueError) for an empty prompt or one that, with its
        max_tokens, exceeds `info.max_tokens`; validation happens before the first step."""
        ...


Engine = EmbeddingEngine | GenerationEngine


@runtime_checkable
class ChatEngine(Protocol):
    """A GenerationEngine that can write chat turns in its model's own format."""

    def chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of the prompt for the assistant's next turn. Raises InputError when
        the model has no chat template or its template refuses the messages."""
        ...
