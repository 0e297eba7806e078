"""The profiler measures each candidate against the fp32 reference, deterministically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tierwise_operator.api import Precision, TierKind
from tierwise_runtime.profiler.evalset import BUILTIN, EvalSetError, load_eval_set
from tierwise_runtime.profiler.progress import Progress
from tierwise_runtime.profiler.run import ProfileRequest, candidates, profile_model
from tierwise_runtime.profiler.timing import TimingPolicy, percentile

from .fakes import fake_loader

FAST = TimingPolicy(warmup=1, repeats=5, min_repeats=2, budget_seconds=1.0)


def _request(uri: str, **kw: object) -> ProfileRequest:
    return ProfileRequest(model_uri=uri, batch_sizes=(1, 4), timing=FAST,
                          offload_dir=Path("/tmp/unused"), **kw)  # type: ignore[arg-type]  # fmt: skip


def _quiet(n: int) -> Progress:
    return Progress(n, stream=io.StringIO())


def test_the_bundled_eval_set_has_hundreds_of_varied_texts() -> None:
    eval_set = load_eval_set(None)
    assert eval_set.name == BUILTIN
    assert len(eval_set.texts) >= 300
    assert len(set(eval_set.texts)) == len(eval_set.texts)
    assert load_eval_set(None).digest == eval_set.digest


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "is empty"), ("not json\n", "line 1: not JSON"), ('{"txt": "x"}\n', "line 1: expected"),
     ('{"text": "ok"}\n{"text": ""}\n', "line 2: expected")],
)  # fmt: skip
def test_bad_eval_files_are_named_with_line_and_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text(content)
    with pytest.raises(EvalSetError, match=problem):
        load_eval_set(str(path))
    with pytest.raises(EvalSetError, match="No such file"):
        load_eval_set(str(tmp_path / "absent.jsonl"))


def test_nearest_rank_percentiles() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 0.5) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_candidates_cover_variants_precisions_and_tiers() -> None:
    request = ProfileRequest(model_uri="u", variants={"student": "s"}, offload_dir=Path("/x"))
    labels = [c.label for c in candidates(request)]
    assert len(labels) == 2 * 5 * 2
    assert "int8/offload" in labels and "student:int4/cpu" in labels
    gpu = ProfileRequest(model_uri="u", device="cuda")
    assert {c.tier for c in candidates(gpu)} == {TierKind.GPU}


def test_embedding_profile_orders_weights_and_reports_zero_delta_at_fp32() -> None:
    eval_set = load_eval_set(None, limit=40)
    request = _request("fake://embedder", tiers=(TierKind.CPU,))
    profile = profile_model(request, eval_set, fake_loader, _quiet(5))
    by_precision = {c.precision: c for c in profile.candidates}
    assert by_precision[Precision.FP32].accuracy.delta == 0.0  # type: ignore[union-attr]
    weights = [by_precision[p].weight_bytes for p in (Precision.INT4, Precision.INT8,
                                                       Precision.BF16, Precision.FP32)]  # fmt: skip
    assert weights == sorted(weights) and len(set(weights)) == 4
    int4 = by_precision[Precision.INT4].accuracy
    assert int4 is not None and int4.delta > by_precision[Precision.INT8].accuracy.delta  # type: ignore[union-attr]
    assert int4.cosine_p5 is not None and int4.cosine_p5 <= int4.cosine_mean  # type: ignore[operator]
    point = by_precision[Precision.INT8].latency[1]
    assert point.batch == 4 and point.samples >= 2 and point.p99_ms >= point.p50_ms
    assert profile.eval_set is not None and profile.eval_set.size == 40
    assert profile.machine is not None and profile.machine.threads >= 1


def test_int4_reports_its_gptq_codes_with_round_to_nearest_beside_them() -> None:
    eval_set = load_eval_set(None, limit=40)
    request = _request("fake://embedder", precisions=(Precision.INT4,),
                       tiers=(TierKind.CPU, TierKind.OFFLOAD))  # fmt: skip
    profile = profile_model(request, eval_set, fake_loader, _quiet(2))
    cpu = profile.candidate(Precision.INT4, TierKind.CPU)
    offload = profile.candidate(Precision.INT4, TierKind.OFFLOAD)
    assert cpu is not None and cpu.calibration is not None and cpu.accuracy is not None
    assert cpu.calibration.method == "gptq"
    rtn = cpu.calibration.rtn_accuracy
    assert rtn is not None and rtn.delta > cpu.accuracy.delta > 0
    assert offload is not None and offload.calibration is not None
    assert offload.calibration.method == "rtn" and offload.calibration.rtn_accuracy is None
    assert offload.accuracy is not None and offload.accuracy.delta == rtn.delta
    assert profile.candidate(Precision.INT4, TierKind.CPU) is cpu


def test_generation_profile_reports_perplexity_and_top1() -> None:
    eval_set = load_eval_set(None, limit=30)
    request = _request("fake://decoder", tiers=(TierKind.CPU,),
                       precisions=(Precision.FP32, Precision.INT8, Precision.INT4))  # fmt: skip
    profile = profile_model(request, eval_set, fake_loader, _quiet(3))
    acc = {c.precision: c.accuracy for c in profile.candidates}
    assert acc[Precision.FP32].top1_agreement == 1.0  # type: ignore[union-attr]
    assert acc[Precision.FP32].delta == 0.0  # type: ignore[union-attr]
    assert acc[Precision.INT4].top1_agreement < acc[Precision.INT8].top1_agreement  # type: ignore[operator,union-attr]
    assert acc[Precision.INT8].perplexity is not None  # type: ignore[union-attr]
    assert profile.candidates[0].kv_cache_bytes_per_token == 1024


def test_accuracy_is_deterministic_across_runs() -> None:
    eval_set = load_eval_set(None, limit=20)
    request = _request("fake://embedder", tiers=(TierKind.CPU,), precisions=(Precision.INT8,))
    first = profile_model(request, eval_set, fake_loader, _quiet(1)).candidates[0].accuracy
    again = profile_model(request, eval_set, fake_loader, _quiet(1)).candidates[0].accuracy
    assert first is not None and again is not None
    assert abs(first.delta - again.delta) <= 1e-6


def test_a_failing_candidate_is_recorded_and_the_rest_measured() -> None:
    eval_set = load_eval_set(None, limit=10)
    request = _request("fake://broken-embedder", tiers=(TierKind.CPU,),
                       precisions=(Precision.FP32, Precision.INT4))  # fmt: skip
    stream = io.StringIO()
    profile = profile_model(request, eval_set, fake_loader, Progress(2, stream=stream))
    failed = [c for c in profile.candidates if c.error]
    assert [c.precision for c in failed] == [Precision.INT4]
    assert "int4 kernel unavailable" in (failed[0].error or "")
    assert "FAILED" in stream.getvalue()


def test_plain_progress_writes_one_line_per_candidate() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream=stream)
    for label in ("fp32/cpu", "int8/cpu"):
        progress.start(label)
        progress.step("timing")
        progress.done("delta 0.0%")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("[2/2] int8/cpu")
    assert json.dumps(lines)  # plain text, no carriage returns
    assert "\r" not in stream.getvalue()
