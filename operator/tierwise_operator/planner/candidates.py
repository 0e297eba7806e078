"""Candidates: every allowed variant x precision x TierClass of one InferenceModel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..api import PRIMARY_VARIANT, InferenceModel, Precision, TierClass, TierKind


@dataclass(frozen=True, order=True)
class CandidateKey:
    """One way to serve a model; `str()` is the name used in status, events and failures."""

    variant: str
    precision: Precision
    tier_class: str

    def __str__(self) -> str:
        # The primary variant is left out, as in `int4/cpu-large`.
        if self.variant == PRIMARY_VARIANT:
            return f"{self.precision}/{self.tier_class}"
        return f"{self.variant}/{self.precision}/{self.tier_class}"

    @classmethod
    def parse(cls, text: str) -> CandidateKey:
        """The key named by `str()`; ValueError for anything else."""
        parts = text.split("/")
        if len(parts) == 2:
            parts.insert(0, PRIMARY_VARIANT)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f'"{text}" is not a candidate (variant/precision/tierClass)')
        try:
            precision = Precision(parts[1])
        except ValueError:
            raise ValueError(f'"{text}": unknown precision "{parts[1]}"') from None
        return cls(parts[0], precision, parts[2])


@dataclass(frozen=True)
class Candidate:
    """A candidate key with the TierClass it names."""

    key: CandidateKey
    tier: TierClass

    @property
    def kind(self) -> TierKind:
        return self.tier.spec.kind


def variant_names(model: InferenceModel) -> list[str]:
    return [PRIMARY_VARIANT, *(v.name for v in model.spec.model.variants)]


def allowed_tiers(model: InferenceModel, tiers: Sequence[TierClass]) -> list[TierClass]:
    """The TierClasses the spec allows, in name order (all when the list is empty)."""
    wanted = set(model.spec.tier_classes)
    chosen = [t for t in tiers if not wanted or t.name in wanted]
    return sorted(chosen, key=lambda t: t.name)


def missing_tiers(model: InferenceModel, tiers: Sequence[TierClass]) -> list[str]:
    """TierClass names the spec asks for that the cluster does not have."""
    known = {t.name for t in tiers}
    return sorted(set(model.spec.tier_classes) - known)


def enumerate_candidates(model: InferenceModel, tiers: Sequence[TierClass]) -> list[Candidate]:
    """Every variant x allowed precision x allowed TierClass, in a fixed order."""
    return [
        Candidate(CandidateKey(variant, precision, tier.name), tier)
        for variant in variant_names(model)
        for precision in model.spec.precisions
        for tier in allowed_tiers(model, tiers)
    ]
