"""What a checkpoint reader returns: config, lazily read tensors, tokenizer, limits."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tierwise_operator.api import Architecture

from ..errors import CheckpointError
from ..models.bert import BertConfig
from ..models.llama import LlamaConfig
from .tokenizer import TextTokenizer


class TensorSource(Mapping[str, torch.Tensor]):
    """Tensors by our parameter names, each read (memory-mapped or decoded) only when asked."""

    def __init__(self, readers: dict[str, Callable[[], torch.Tensor]]) -> None:
        self._readers = readers

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._readers[name]()

    def __contains__(self, name: object) -> bool:
        return name in self._readers

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


@dataclass
class Checkpoint:
    architecture: Architecture
    config: BertConfig | LlamaConfig
    tensors: TensorSource
    tokenizer: TextTokenizer
    files: list[Path]
    max_tokens: int
    """Longest input in tokens (encoders: the sentence-transformers max_seq_length)."""
    eos_token_ids: frozenset[int] = field(default_factory=frozenset)

    def fingerprint(self) -> str:
        """Cheap identity of the files (path, size, mtime): keys the offload cache."""
        h = hashlib.sha256()
        for f in sorted(self.files):
            st = f.stat()
            h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]


Rules = Iterable[tuple[str, str]]


def rename(
    names: Iterable[str], rules: Rules, ignored: Iterable[str] = (), prefixes: Iterable[str] = ()
) -> dict[str, str]:
    """Maps checkpoint names to ours: {our name: checkpoint name}; unknown names are errors."""
    compiled = [(re.compile(p), r) for p, r in rules]
    skip = [re.compile(p) for p in ignored]
    out: dict[str, str] = {}
    unknown = []
    for name in names:
        if any(s.search(name) for s in skip):
            continue
        ours = _apply(_strip(name, prefixes), compiled)
        if ours is None:
            unknown.append(name)
        else:
            out[ours] = name
    if unknown:
        raise CheckpointError(f"unexpected tensors in checkpoint: {', '.join(unknown[:3])}")
    return out


def _strip(name: str, prefixes: Iterable[str]) -> str:
    for p in prefixes:
        if name.startswith(p):
            return name[len(p) :]
    return name


def _apply(name: str, compiled: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, repl in compiled:
        if pattern.search(name):
            return pattern.sub(repl, name)
    return None
