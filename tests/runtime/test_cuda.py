"""CUDA paths against CPU fp32 on the same random weights (no model files on GPU machines)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tierwise_operator.api import TierKind
from tierwise_runtime.engine import Engine, SamplingParams
from tierwise_runtime.loader import load_engine
from tierwise_runtime.quantize import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from tierwise_runtime.synthetic import write_bert, write_llama

pytestmark = pytest.mark.cuda

IDS = [list(range(3, 60)), list(range(100, 120))]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("cuda-llama")
    # Sizes that tinygemm accepts: N % 8 == 0 and K % 128 == 0 for every Linear.
    sizes = {"vocab": 2048, "dim": 512, "layers": 4, "heads": 8, "kv_heads": 2}
    return f"file://{write_llama(folder, intermediate=1536, **sizes)}"


@pytest.fixture(scope="module")
def cpu_logits(llama: str) -> torch.Tensor:
    return load_engine(llama, "fp32").logits(IDS)  # type: ignore[union-attr]


def _masked_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    rows = [a[i, : len(s)] for i, s in enumerate(IDS)], [b[i, : len(s)] for i, s in enumerate(IDS)]
    x, y = torch.cat(rows[0]), torch.cat(rows[1])
    return float(torch.nn.functional.cosine_similarity(x, y, dim=-1).mean())


def test_fp32_on_cuda_matches_cpu(llama: str, cpu_logits: torch.Tensor) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    engine = load_engine(llama, "fp32", device="cuda")
    assert engine.info.tier is TierKind.GPU and engine.info.device == "cuda:0"
    got = engine.logits(IDS)  # type: ignore[union-attr]
    for i, s in enumerate(IDS):
        torch.testing.assert_close(got[i, : len(s)], cpu_logits[i, : len(s)], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("precision", "floor"), [("bf16", 0.999), ("fp16", 0.999), ("int8", 0.995), ("int4", 0.95)]
)
def test_each_precision_on_cuda_stays_close_to_cpu_fp32(
    llama: str, cpu_logits: torch.Tensor, precision: str, floor: float
) -> None:
    engine = load_engine(llama, precision, device="cuda")
    assert _masked_cosine(engine.logits(IDS), cpu_logits) >= floor  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("precision", "kind"), [("int8", Int8WeightOnlyLinear), ("int4", Int4WeightOnlyLinear)]
)
def test_quantized_weights_live_on_the_device_in_their_packed_form(
    llama: str, precision: str, kind: type
) -> None:
    engine = load_engine(llama, precision, device="cuda")
    layers = [m for m in engine.model.modules() if isinstance(m, kind)]  # type: ignore[union-attr]
    assert layers and all(m.weight.is_cuda for m in layers)
    fp32 = load_engine(llama, "fp32").info.weight_bytes
    assert engine.info.weight_bytes < (0.3 if precision == "int8" else 0.2) * fp32


@pytest.mark.parametrize("precision", ["bf16", "int8", "int4"])
def test_offload_streaming_on_cuda_computes_what_the_resident_model_does(
    llama: str, tmp_path: Path, precision: str
) -> None:
    resident = load_engine(llama, precision, device="cuda")
    streamed = load_engine(llama, precision, device="cuda", offload_dir=tmp_path)
    assert streamed.info.tier is TierKind.OFFLOAD
    torch.testing.assert_close(
        streamed.logits(IDS),  # type: ignore[union-attr]
        resident.logits(IDS),  # type: ignore[union-attr]
        atol=1e-3,
        rtol=1e-3,
    )


def test_offload_streaming_holds_about_two_blocks_on_the_device(tmp_path: Path) -> None:
    sizes = {"vocab": 2048, "dim": 1024, "layers": 8, "heads": 8, "kv_heads": 2}
    uri = f"file://{write_llama(tmp_path / 'ckpt', intermediate=2816, **sizes)}"
    offload = tmp_path / "offload"
    load_engine(uri, "fp32", device="cuda", offload_dir=offload).logits(IDS)  # type: ignore[union-attr]
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    engine = load_engine(uri, "fp32", device="cuda", offload_dir=offload)
    engine.logits(IDS)  # type: ignore[union-attr]
    peak = torch.cuda.max_memory_allocated() - base
    weights = engine.info.weight_bytes  # ~380 MB; a block is ~45 MB, embedding + head 16 MB
    assert peak < 0.6 * weights, f"peak {peak / 1e6:.0f} MB for {weights / 1e6:.0f} MB of weights"


def test_greedy_generation_on_cuda_runs_and_is_deterministic(llama: str) -> None:
    engine = load_engine(llama, "bf16", device="cuda")
    params = [SamplingParams(max_tokens=16, temperature=0)] * 2

    def run(e: Engine) -> list[list[int | None]]:
        return list(e.generate(IDS, params))  # type: ignore[union-attr]

    first = run(engine)
    assert len(first) == 16 and run(engine) == first


def test_encoder_on_cuda_matches_cpu(tmp_path: Path) -> None:
    uri = f"file://{write_bert(tmp_path)}"
    texts = ["w1 w2 w3", "w10 w20 w30 w40 w50 w60", "w7"]
    ref = load_engine(uri, "fp32").embed(texts)  # type: ignore[union-attr]
    for precision, floor in [("fp32", 0.99999), ("bf16", 0.999), ("int8", 0.99), ("int4", 0.9)]:
        got = load_engine(uri, precision, device="cuda").embed(texts)  # type: ignore[union-attr]
        assert got.device.type == "cpu"
        assert (got * ref).sum(dim=1).min() >= floor, precision
