"""Deterministic stand-in engines: real torch maths, precision shown as controlled noise."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence

import torch

from tierwise_operator.api import Architecture, Precision, Task, TierKind
from tierwise_runtime.engine import EngineInfo, SamplingParams

NOISE = {Precision.FP32: 0.0, Precision.BF16: 0.002, Precision.FP16: 0.002,
         Precision.INT8: 0.01, Precision.INT4: 0.08}  # fmt: skip
BYTES = {Precision.FP32: 4, Precision.BF16: 2, Precision.FP16: 2, Precision.INT8: 1,
         Precision.INT4: 0.5}  # fmt: skip
PARAMS = 1_000_000


GPTQ_NOISE = 0.03
"""int4 with calibrated codes: less noise than round-to-nearest's, as the real model shows."""


def _calibration(precision: Precision, offload: bool, asked: str | None) -> str | None:
    if precision is not Precision.INT4:
        return None
    return asked or ("rtn" if offload else "gptq")


def _noise(precision: Precision, calibration: str | None) -> float:
    return GPTQ_NOISE if calibration == "gptq" else NOISE[precision]


def _info(
    task: Task, precision: Precision, device: str, offload: bool, calibration: str | None = None
) -> EngineInfo:
    tier = (
        TierKind.GPU
        if device.startswith("cuda")
        else (TierKind.OFFLOAD if offload else TierKind.CPU)
    )
    return EngineInfo(
        model_name="fake", task=task,
        architecture=Architecture.BERT if task is Task.TEXT_EMBEDDING else Architecture.LLAMA,
        precision=precision, device=device, tier=tier, max_tokens=128,
        weight_bytes=int(PARAMS * BYTES[precision]), parameters=PARAMS, embedding_dim=16,
        kv_cache_bytes_per_token=None if task is Task.TEXT_EMBEDDING else 1024,
        calibration=_calibration(precision, offload, calibration),
    )  # fmt: skip


def _tokens(text: str) -> list[int]:
    return [1] + [zlib.crc32(w.encode()) % 97 + 2 for w in text.split()]


class FakeEmbedder:
    def __init__(
        self,
        precision: Precision,
        device: str = "cpu",
        offload: bool = False,
        calibration: str | None = None,
    ) -> None:
        self.info = _info(Task.TEXT_EMBEDDING, precision, device, offload, calibration)
        self._noise = _noise(precision, self.info.calibration)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [_tokens(t) for t in texts]

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            gen = torch.Generator().manual_seed(zlib.crc32(text.encode()))
            vec = torch.randn(16, generator=gen)
            vec = vec + self._noise * torch.randn(16, generator=gen)
            rows.append(vec / vec.norm())
        return torch.stack(rows)


class FakeDecoder:
    eos_token_ids = frozenset({0})

    def __init__(
        self,
        precision: Precision,
        device: str = "cpu",
        offload: bool = False,
        calibration: str | None = None,
    ) -> None:
        self.info = _info(Task.TEXT_GENERATION, precision, device, offload, calibration)
        gen = torch.Generator().manual_seed(7)
        self._table = torch.randn(100, 100, generator=gen)
        noise = _noise(precision, self.info.calibration)
        self._table += noise * 20 * torch.randn(100, 100, generator=gen)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [_tokens(t) for t in texts]

    def detokenize(self, ids: Sequence[int]) -> str:
        return " ".join(f"t{i}" for i in ids)

    def logits(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        width = max(len(s) for s in ids)
        padded = torch.tensor([list(s) + [0] * (width - len(s)) for s in ids])
        return self._table[padded]

    def generate(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> Iterator[list[int | None]]:
        last = [p[-1] for p in prompts]
        for _ in range(max(p.max_tokens for p in params)):
            last = [int(self._table[t].argmax()) for t in last]
            yield list(last)


def fake_loader(uri: str, precision: Precision, device: str = "cpu",
                offload_dir: object = None, group_size: int | None = None,
                name: str | None = None,
                calibration: str | None = None) -> FakeEmbedder | FakeDecoder:  # fmt: skip
    if "broken" in uri and precision is Precision.INT4:
        raise RuntimeError("int4 kernel unavailable")
    if "missing" in uri:
        raise FileNotFoundError(f"model not found: {uri}")
    cls = FakeDecoder if "decoder" in uri else FakeEmbedder
    return cls(precision, device, offload_dir is not None, calibration)
