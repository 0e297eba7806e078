"""The profiler measures each adapter: bytes, cold load, mixed-batch overhead, and its accuracy
delta at every base precision against its own fp32 output; a bad adapter is recorded."""

from __future__ import annotations

import json
from pathlib import Path

from tierwise_operator.api import Precision
from tierwise_runtime.adapters.synthetic import write_lora
from tierwise_runtime.loader import load_engine
from tierwise_runtime.profiler.evalset import load_eval_set
from tierwise_runtime.profiler.run import ProfileRequest, profile_model
from tierwise_runtime.profiler.timing import TimingPolicy
from tierwise_runtime.synthetic import write_llama

FAST = TimingPolicy(warmup=1, repeats=4, min_repeats=2, budget_seconds=1.0)


def test_each_adapter_is_measured_at_every_precision_and_a_bad_one_is_named(
    tmp_path: Path,
) -> None:
    base = write_llama(tmp_path / "base", vocab=256, dim=64, layers=2, heads=4, kv_heads=2,
                       intermediate=128)  # fmt: skip
    config = json.loads((base / "config.json").read_text())
    write_lora(tmp_path / "qv", config, targets=("q_proj", "v_proj"), rank=4, seed=1)
    write_lora(tmp_path / "mlp", config, targets=("gate_proj", "down_proj"), rank=8, seed=2)
    request = ProfileRequest(
        model_uri=f"file://{base}", precisions=(Precision.FP32, Precision.INT8, Precision.INT4),
        batch_sizes=(1,), timing=FAST, prompt_tokens=8, gen_tokens=2,
        adapters={n: f"file://{tmp_path / n}" for n in ("qv", "mlp", "missing")},
    )  # fmt: skip
    profile = profile_model(request, load_eval_set(None, 6), load_engine)
    by_name = {a.name: a for a in profile.adapters}
    assert list(by_name) == ["qv", "mlp", "missing"]
    assert by_name["missing"].error is not None and "does not exist" in by_name["missing"].error
    qv, mlp = by_name["qv"], by_name["mlp"]
    # q/v of two 64-wide layers with 2x32 kv at rank 4, fp32: A [4, 64] + B [out, 4].
    assert qv.resident_bytes == 2 * 4 * ((4 * 64 + 64 * 4) + (4 * 64 + 32 * 4))
    assert mlp.rank == 8 and mlp.resident_bytes is not None and mlp.resident_bytes > 0
    for adapter in (qv, mlp):
        assert adapter.error is None
        assert adapter.load_ms is not None and adapter.load_ms > 0
        assert adapter.mixed_batch_overhead is not None
        deltas = {str(a.precision): a.delta for a in adapter.accuracy}
        assert set(deltas) == {"fp32", "int8", "int4"}
        assert deltas["fp32"] < 1e-6  # its own reference
        # A random model's perplexity may even drop when quantized (delta clips at 0), so
        # only that quantizing the base is seen: at least one delta above zero.
        assert max(deltas["int8"], deltas["int4"]) > 1e-5
