"""Figures come from the profile where it has them; gaps are estimated and say so."""

from __future__ import annotations

import pytest

from tierwise_operator.api import Precision
from tierwise_operator.planner import decide
from tierwise_operator.planner.figures import FigureSource

from .conftest import NOW, GiB, entry, model, point, profile, tier

CPU, GPU, NVME = tier("cpu"), tier("gpu", "gpu", memory="80Gi"), tier("nvme", "offload")


def test_a_measured_candidate_is_used_as_measured() -> None:
    m = model(prof=profile(entry("int8", "cpu", 1.0, 0.004, [point(1, 10, 100)], peak_gib=1.5)))
    f = FigureSource(m).figures("primary", Precision.INT8, CPU)
    assert f.estimated == ()
    assert (f.weight_bytes, f.resident_bytes, f.accuracy_delta) == (GiB, int(1.5 * GiB), 0.004)
    assert f.cpu_cores == 4  # the threads the profile was measured with


def test_another_tier_lends_weights_and_accuracy_but_latency_is_scaled_or_estimated() -> None:
    m = model(prof=profile(entry("int8", "cpu", 1.0, 0.004, [point(1, 10, 100)])))
    f = FigureSource(m).figures("primary", Precision.INT8, GPU)
    assert f.weight_bytes == GiB and f.accuracy_delta == 0.004
    assert set(f.estimated) == {"memory", "latency"}


def test_another_precision_on_the_same_tier_is_scaled_by_relative_speed() -> None:
    m = model(
        task="text-generation",
        prof=profile(entry("fp16", "cpu", 2.0, 0.001, [point(1, 100, 10)]), task="text-generation"),
    )
    f = FigureSource(m).figures("primary", Precision.INT8, CPU)
    assert f.curve is not None and f.curve.max_throughput > 10  # fewer bytes to read per token
    assert f.accuracy_delta == pytest.approx(0.001 + (0.01 - 0.001))
    assert "accuracy" in f.estimated and "latency" in f.estimated


def test_without_any_profile_everything_is_estimated_from_the_parameter_count() -> None:
    f = FigureSource(model(parameters=10**8)).figures("primary", Precision.FP16, CPU)
    assert f.weight_bytes == 2 * 10**8
    assert set(f.estimated) == {"memory", "accuracy", "latency"}
    assert f.missing is None


def test_a_variant_without_a_measured_accuracy_cannot_be_chosen() -> None:
    m = model(variants=[{"name": "student", "source": {"uri": "builtin://s"}, "parameters": 10**7}])
    f = FigureSource(m).figures("student", Precision.INT8, CPU)
    assert f.accuracy_delta is None and f.missing is None


def test_no_profile_and_no_parameters_leaves_nothing_to_plan_with() -> None:
    f = FigureSource(model(parameters=None)).figures("primary", Precision.INT8, CPU)
    assert f.missing and "parameter count" in f.missing


def test_a_candidate_whose_profiling_failed_is_never_planned() -> None:
    failed = entry("int4", "offload", 0.1, 0.0, [])
    failed["error"] = "int4 kernels unavailable on this CPU"
    f = FigureSource(model(prof=profile(failed))).figures("primary", Precision.INT4, NVME)
    assert f.missing == "profiling failed: int4 kernels unavailable on this CPU"


def test_a_variant_is_only_planned_at_the_precisions_its_accuracy_was_measured_at() -> None:
    student = {"name": "student", "source": {"uri": "builtin://s"}, "parameters": 10**7}
    measured = entry("fp32", "cpu", 0.04, 0.012, [point(1, 5, 200)], variant="student")
    m = model(variants=[student], prof=profile(measured))
    source = FigureSource(m)
    assert source.figures("student", Precision.FP32, GPU).accuracy_delta == 0.012
    assert source.figures("student", Precision.INT8, CPU).accuracy_delta is None


def test_a_variant_at_an_unmeasured_precision_is_rejected_naming_the_precision() -> None:
    student = {"name": "student", "source": {"uri": "builtin://s"}, "parameters": 10**7}
    measured = entry("fp32", "cpu", 0.04, 0.0, [point(1, 5, 200)], variant="student")
    m = model(variants=[student], precisions=["fp32", "int8"], prof=profile(measured))
    plan = decide(m, [CPU], NOW)
    why = {r.candidate: r.why for r in plan.rejected}
    assert why["student/int8/cpu"] == (
        "accuracy of variant 'student' at int8 not measured yet "
        "(a variant is only chosen at a precision it was profiled at)"
    )
    assert "student/fp32/cpu" not in why or not why["student/fp32/cpu"].startswith("accuracy")
