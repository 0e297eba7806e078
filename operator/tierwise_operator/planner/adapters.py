"""LoRA adapters in a plan: their resident bytes in each replica, and the base precisions
their own accuracy budgets refuse. Pure functions of the spec and the profile."""

from __future__ import annotations

from ..api import PRIMARY_VARIANT, InferenceModel, ModelProfile, Precision, TierKind

GUESSED_SHARE = 0.02
"""Resident bytes assumed per adapter, as a share of the base's weights, until profiled
(rank 16 on every projection of a Llama is about 1-2%)."""


def resident_adapter_bytes(
    model: InferenceModel, profile: ModelProfile | None, weight_bytes: int
) -> tuple[int, bool]:
    """(bytes, estimated) reserved for adapters in one replica: `maxResidentAdapters` slots
    plus the all-zero slot of the base rows, each the size of the largest adapter (the
    runtime pads every slot to the largest rank). Reserved for every slot even with fewer
    adapters listed, so that adding one does not change the memory request, which would
    restart the replicas."""
    adapters = model.spec.adapters
    if not adapters:
        return 0, False
    measured = {a.name: a for a in (profile.adapters if profile else []) if not a.error}
    sizes, estimated = [], False
    for adapter in adapters:
        entry = measured.get(adapter.name)
        if entry is not None and entry.resident_bytes is not None:
            sizes.append(entry.resident_bytes)
        elif profile is None or adapter.name not in {a.name for a in profile.adapters}:
            sizes.append(int(weight_bytes * GUESSED_SHARE))
            estimated = True
    if not sizes:
        return 0, estimated
    return (model.spec.max_resident_adapters + 1) * max(sizes), estimated


def adapter_refusal(
    model: InferenceModel,
    profile: ModelProfile | None,
    variant: str,
    precision: Precision,
    tier: TierKind,
) -> str | None:
    """Why a candidate cannot serve the adapters, in words; None when it can."""
    adapters = model.spec.adapters
    if not adapters:
        return None

    if variant != PRIMARY_VARIANT:
        return f"adapters are trained on the primary checkpoint, not variant {variant!r}"
    if tier is TierKind.OFFLOAD:
        return "adapters are not served on the offload tier (its weights stream from disk)"
    measured = {a.name: a for a in profile.adapters} if profile else {}
    for adapter in adapters:
        if adapter.accuracy_budget is None or precision is Precision.FP32:
            continue  # fp32 is each adapter's own reference
        budget = float(adapter.accuracy_budget.max_degradation)
        entry = measured.get(adapter.name)
        if entry is not None and entry.error:
            continue  # it cannot serve anywhere; AdaptersReady says why
        delta = entry.delta(precision, tier) if entry is not None else None
        if delta is None:
            return (
                f"adapter {adapter.name!r} has an accuracy budget but no measured delta "
                f"at {precision}"
            )
        if delta > budget + 1e-12:
            return (
                f"adapter {adapter.name!r} loses {pct(delta)} against its fp32 output at "
                f"{precision}, over its budget of {pct(budget)}"
            )
    return None


def pct(fraction: float) -> str:
    # explain.pct's form; explain imports the figures, which import this module.
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"
