"""Adapters in the plan: their bytes count in each replica, their budgets refuse precisions."""

from __future__ import annotations

from typing import Any

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.planner import decide

from .conftest import EMBEDDER, EMBEDDER_PROFILE, NOW, model

MiB = 2**20


def _adapters(*budgets: str | None) -> list[dict[str, Any]]:
    out = []
    for i, budget in enumerate(budgets):
        entry: dict[str, Any] = {"name": f"tuned-{i}", "source": {"uri": f"pvc://lora/t{i}"}}
        if budget is not None:
            entry["accuracyBudget"] = {"maxDegradation": budget}
        out.append(entry)
    return out


def _measured(deltas: dict[str, float], resident_mib: float = 40, **extra: Any) -> dict:
    accuracy = [
        {"precision": p, "tier": t, "delta": d}
        for p, d in deltas.items()
        for t in ("cpu", "gpu", "offload")
    ]
    return {"residentBytes": int(resident_mib * MiB), "rank": 16, "accuracy": accuracy, **extra}


def _with_adapters(
    adapters: list[dict[str, Any]], measured: list[dict[str, Any]], **kw: Any
) -> InferenceModel:
    entries = [
        {"name": a["name"], "uri": a["source"]["uri"], **m}
        for a, m in zip(adapters, measured, strict=True)
    ]
    prof = {**EMBEDDER_PROFILE, "adapters": entries}
    base = model(rps=40, slo="50ms", **{**EMBEDDER, "prof": prof}, **kw)
    spec = base.spec.model_copy(update={"adapters": [], "max_resident_adapters": 2})
    wire = base.to_wire()
    wire["spec"] = {**spec.to_wire(), "adapters": adapters}
    return InferenceModel.model_validate(wire)


def _why(plan: Any, candidate: str) -> str:
    return next(r.why for r in plan.rejected if r.candidate == candidate)


def test_resident_adapters_add_their_bytes_to_each_replica(three_tiers: list[TierClass]) -> None:
    without = decide(model(rps=40, slo="50ms", **EMBEDDER), three_tiers, NOW)
    adapters = _adapters(None, None, None)
    measured = [_measured({"int8": 0.01}, 40), _measured({"int8": 0.01}, 60),
                _measured({"int8": 0.01}, 50)]  # fmt: skip
    plan = decide(_with_adapters(adapters, measured), three_tiers, NOW)
    assert str(plan.chosen.key) == str(without.chosen.key) == "int8/cpu"
    assert plan.chosen is not None and without.chosen is not None
    # maxResidentAdapters (2) slots plus the base's zero slot, each the largest's size.
    assert plan.chosen.figures.adapter_bytes == 3 * 60 * MiB
    grown = plan.chosen.figures.resident_bytes - without.chosen.figures.resident_bytes
    assert grown == 3 * 60 * MiB


def test_a_precision_that_breaks_an_adapters_budget_is_refused_by_name(
    three_tiers: list[TierClass],
) -> None:
    adapters = _adapters("0.5%", None)
    measured = [_measured({"int8": 0.012, "int4": 0.04, "fp16": 0.0001}), _measured({"int8": 0.2})]
    plan = decide(_with_adapters(adapters, measured), three_tiers, NOW)
    assert plan.chosen is not None
    assert plan.chosen.key.precision.value in ("fp32", "fp16")
    assert _why(plan, "int8/cpu") == (
        "adapter 'tuned-0' loses 1.2% against its fp32 output at int8, over its budget of 0.5%"
    )


def test_an_adapter_budget_without_a_measurement_refuses_all_but_fp32(
    three_tiers: list[TierClass],
) -> None:
    adapters = _adapters("1%")
    plan = decide(_with_adapters(adapters, [_measured({})]), three_tiers, NOW)
    assert plan.chosen is not None and plan.chosen.key.precision.value == "fp32"
    assert "no measured delta at int8" in _why(plan, "int8/cpu")


def test_a_failed_adapter_neither_blocks_the_base_nor_counts(three_tiers: list[TierClass]) -> None:
    adapters = _adapters("0.1%")
    failed = [{"error": "adapter_model.safetensors does not exist"}]
    plan = decide(_with_adapters(adapters, failed), three_tiers, NOW)
    assert plan.chosen is not None and str(plan.chosen.key) == "int8/cpu"
    assert plan.chosen.figures.adapter_bytes == 0
