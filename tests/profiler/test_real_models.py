"""Profiles of the real test models: the accuracy budget made real, end to end through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tierwise_operator.api import ModelProfile, Precision, TierKind
from tierwise_operator.api.profile_codec import decode
from tierwise_operator.cli import main as tierwise
from tierwise_runtime.loader import load_engine
from tierwise_runtime.profiler.evalset import load_eval_set
from tierwise_runtime.profiler.run import ProfileRequest, profile_model
from tierwise_runtime.profiler.timing import TimingPolicy

from .test_profiler import _quiet

QUICK = TimingPolicy(warmup=1, repeats=5, min_repeats=3, budget_seconds=2.0)


@pytest.fixture(scope="module")
def minilm_profile(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelProfile, Path]:
    """The CLI as the profile Job runs it, on a slice of the bundled eval set."""
    out = tmp_path_factory.mktemp("minilm")
    cmd = [
        sys.executable, "-m", "tierwise_runtime.cli", "profile",
        "--model", "builtin://all-minilm-l6-v2", "--tiers", "cpu",
        "--eval-limit", "48", "--batch-sizes", "1,8", "--repeats", "5", "--warmup", "1",
        "--out", str(out / "profile.json"), "--termination-log", str(out / "termination-log"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    profile = ModelProfile.model_validate_json((out / "profile.json").read_text())
    return profile, out


@pytest.mark.slow
def test_minilm_profile_orders_memory_and_keeps_int8_within_2_percent(
    minilm_profile: tuple[ModelProfile, Path],
) -> None:
    profile, _ = minilm_profile
    by = {c.precision: c for c in profile.candidates}
    assert set(by) == set(Precision) and all(c.error is None for c in by.values())
    assert by[Precision.FP32].accuracy.delta == 0.0  # type: ignore[union-attr]
    weights = [by[p].weight_bytes for p in (Precision.INT4, Precision.INT8, Precision.BF16,
                                            Precision.FP32)]  # fmt: skip
    assert weights == sorted(weights) and len(set(weights)) == 4
    assert 0.0 <= by[Precision.INT8].accuracy.delta <= 0.02  # type: ignore[union-attr]
    assert profile.machine is not None and profile.machine.threads >= 1
    assert profile.model.digest and profile.eval_set is not None and profile.eval_set.size == 48
    for cand in by.values():
        assert [p.batch for p in cand.latency] == [1, 8]
        assert all(p.samples >= 3 and p.p99_ms >= p.p50_ms > 0 for p in cand.latency)


@pytest.mark.slow
def test_the_termination_message_carries_the_same_profile(
    minilm_profile: tuple[ModelProfile, Path],
) -> None:
    profile, out = minilm_profile
    compact = (out / "termination-log").read_text()
    assert len(compact.encode()) <= 4096
    back = decode(compact)
    assert [(c.precision, c.weight_bytes) for c in back.candidates] == [
        (c.precision, c.weight_bytes) for c in profile.candidates
    ]


@pytest.mark.slow
def test_the_report_renders_the_trade_off(minilm_profile: tuple[ModelProfile, Path]) -> None:
    _, out = minilm_profile
    png = out / "frontier.png"
    assert tierwise(["report", str(out / "profile.json"), "--out", str(png), "--budget", "2%"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.timeout(1800)  # int4 loads with GPTQ calibration: minutes on a 2-core CPU
def test_smollm2_reports_perplexity_and_top1_for_every_precision() -> None:
    request = ProfileRequest(
        model_uri="builtin://smollm2-135m", tiers=(TierKind.CPU,), batch_sizes=(1,),
        timing=TimingPolicy(warmup=1, repeats=3, min_repeats=2, budget_seconds=2.0),
        gen_tokens=4, prompt_tokens=16,
    )  # fmt: skip
    eval_set = load_eval_set(None, limit=16)
    profile = profile_model(request, eval_set, load_engine, _quiet(5))
    by = {c.precision: c for c in profile.candidates}
    assert all(c.error is None for c in by.values()), [c.error for c in by.values()]
    for cand in by.values():
        assert cand.accuracy is not None
        assert cand.accuracy.perplexity is not None and cand.accuracy.perplexity > 1
        assert cand.accuracy.top1_agreement is not None
        assert cand.kv_cache_bytes_per_token and cand.kv_cache_bytes_per_token > 0
    assert by[Precision.FP32].accuracy.top1_agreement == 1.0  # type: ignore[union-attr]
    assert by[Precision.INT8].accuracy.top1_agreement > 0.90  # type: ignore[union-attr,operator]


def test_bad_input_gives_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    cases = [
        (["--model", "builtin://nope"], "unknown builtin model"),
        (["--model", "builtin://all-minilm-l6-v2", "--precisions", "int3"], "int3"),
        (["--model", "file:///no/such/model"], "does not exist"),
        (["--model", "builtin://all-minilm-l6-v2", "--eval", str(tmp_path / "empty.jsonl")],
         "is empty"),
    ]  # fmt: skip
    for args, message in cases:
        result = subprocess.run(
            [sys.executable, "-m", "tierwise_runtime.cli", "profile", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode != 0, args
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.stderr
