"""The figures of one candidate: measured from the profile where it has them, else estimated."""

from __future__ import annotations

from dataclasses import dataclass

from ..api import (
    PRIMARY_VARIANT,
    CandidateProfile,
    InferenceModel,
    ModelProfile,
    Precision,
    Task,
    TierClass,
    TierKind,
)
from . import estimate
from .adapters import adapter_refusal, resident_adapter_bytes
from .latency import LatencyCurve


@dataclass(frozen=True)
class Figures:
    """What one replica of a candidate needs and delivers; `estimated` names guessed parts."""

    weight_bytes: int
    resident_bytes: int
    kv_bytes_per_token: int
    accuracy_delta: float | None
    curve: LatencyCurve | None
    cpu_cores: float
    estimated: tuple[str, ...] = ()
    missing: str | None = None
    """Why the candidate cannot be planned at all (no figures, failed profiling)."""
    adapter_bytes: int = 0
    """Bytes of the LoRA adapters resident in each replica (part of resident_bytes)."""
    adapter_problem: str | None = None
    """Why this candidate cannot serve the adapters (a budget it breaks), in words."""


def profile_of(model: InferenceModel) -> ModelProfile | None:
    """The inline profile if given, else the one the operator measured."""
    if model.spec.profile is not None:
        return model.spec.profile
    return model.status.profile if model.status else None


class FigureSource:
    """Resolves figures for the candidates of one model, caching per (variant, precision, tier)."""

    def __init__(self, model: InferenceModel) -> None:
        self.model = model
        self.profile = profile_of(model)
        self._cache: dict[tuple[str, Precision, TierKind, float | None], Figures] = {}

    def figures(self, variant: str, precision: Precision, tier: TierClass) -> Figures:
        kind = tier.spec.kind
        bandwidth = float(tier.spec.offload.read_bandwidth or 0) if tier.spec.offload else None
        key = (variant, precision, kind, bandwidth)
        if key not in self._cache:
            self._cache[key] = self._resolve(variant, precision, kind, bandwidth or None)
        return self._cache[key]

    def _resolve(
        self, variant: str, precision: Precision, kind: TierKind, bandwidth: float | None
    ) -> Figures:
        entry = self._entry(variant, precision, kind)
        if entry is not None and entry.error:
            return _unplannable(f"profiling failed: {entry.error}")
        params = self._parameters(variant)
        weights = self._weight_bytes(entry, variant, precision, params)
        if weights is None:
            return _unplannable(
                f"no profile and no parameter count for variant {variant!r} to estimate from"
            )
        guessed: list[str] = []
        adapters, adapters_guessed = resident_adapter_bytes(self.model, self.profile, weights)
        if adapters_guessed:
            guessed.append("adapters")
        resident = self._resident(entry, weights, kind, guessed) + adapters
        kv = self._kv(entry, variant, params, guessed)
        delta = self._accuracy(variant, precision, kind, guessed)
        cores = self._cores(entry, kind)
        curve = self._curve(
            entry, variant, precision, kind,
            params=params, cores=cores, bandwidth=bandwidth, guessed=guessed,
        )  # fmt: skip
        problem = adapter_refusal(self.model, self.profile, variant, precision, kind)
        return Figures(weights, resident, kv, delta, curve, cores, tuple(guessed),
                       adapter_bytes=adapters, adapter_problem=problem)  # fmt: skip

    def _entry(self, variant: str, precision: Precision, kind: TierKind) -> CandidateProfile | None:
        return self.profile.candidate(precision, kind, variant) if self.profile else None

    def _same_variant(self, variant: str) -> list[CandidateProfile]:
        if self.profile is None:
            return []
        return [c for c in self.profile.candidates if c.variant == variant and not c.error]

    def _parameters(self, variant: str) -> int | None:
        spec = self.model.spec.model
        if variant != PRIMARY_VARIANT:
            return next((v.parameters for v in spec.variants if v.name == variant), None)
        if spec.parameters:
            return spec.parameters
        return self.profile.model.parameters if self.profile else None

    def _weight_bytes(
        self,
        entry: CandidateProfile | None,
        variant: str,
        precision: Precision,
        params: int | None,
    ) -> int | None:
        if entry is not None:
            return entry.weight_bytes
        for other in self._same_variant(variant):
            if other.precision is precision:
                return other.weight_bytes  # the same weights, measured on another tier
        return estimate.weight_bytes(params, precision) if params else None

    def _resident(
        self, entry: CandidateProfile | None, weights: int, kind: TierKind, guessed: list[str]
    ) -> int:
        if entry is not None and entry.peak_memory_bytes:
            return entry.peak_memory_bytes
        guessed.append("memory")
        return estimate.resident_bytes(weights, kind)

    def _kv(
        self, entry: CandidateProfile | None, variant: str, params: int | None, guessed: list[str]
    ) -> int:
        if self.model.spec.model.task is not Task.TEXT_GENERATION:
            return 0  # an encoder keeps no cache between steps (input_checks warns if given)
        if entry is not None and entry.kv_cache_bytes_per_token is not None:
            return entry.kv_cache_bytes_per_token
        for other in self._same_variant(variant):
            if other.kv_cache_bytes_per_token is not None:
                return other.kv_cache_bytes_per_token  # the cache is fp16 at any weight precision
        kv = estimate.kv_bytes_per_token(self.model.spec.model.task, params or 0)
        if kv:
            guessed.append("kv-cache")
        return kv

    def _accuracy(
        self, variant: str, precision: Precision, kind: TierKind, guessed: list[str]
    ) -> float | None:
        measured = [c for c in self._same_variant(variant) if c.accuracy is not None]
        exact = [c for c in measured if c.precision is precision]
        exact.sort(key=lambda c: c.tier is not kind)  # prefer the same tier kind
        if exact and exact[0].accuracy is not None:
            return exact[0].accuracy.delta
        if variant != PRIMARY_VARIANT:
            # A distilled checkpoint's loss is measured at each precision or not at all: the
            # priors describe quantizing the primary model, not a student trained apart.
            return None
        task = self.model.spec.model.task
        prior = estimate.accuracy_prior(task, precision)
        guessed.append("accuracy")
        if measured and measured[0].accuracy is not None:
            # Another precision of this checkpoint was measured: shift by the priors' gap.
            base = measured[0].accuracy.delta
            return max(0.0, base + prior - estimate.accuracy_prior(task, measured[0].precision))
        return prior

    def _cores(self, entry: CandidateProfile | None, kind: TierKind) -> float:
        if kind is TierKind.GPU:
            return estimate.GPU_CPU_CORES
        measured = entry is not None and entry.latency and self.profile and self.profile.machine
        if measured and self.profile and self.profile.machine:
            return float(self.profile.machine.threads)
        return estimate.DEFAULT_CPU_CORES

    def _curve(
        self,
        entry: CandidateProfile | None,
        variant: str,
        precision: Precision,
        kind: TierKind,
        *,
        params: int | None,
        cores: float,
        bandwidth: float | None,
        guessed: list[str],
    ) -> LatencyCurve | None:
        if entry is not None and (curve := LatencyCurve.from_points(entry.latency)):
            return curve
        task = self.model.spec.model.task
        for other in self._same_variant(variant):
            if other.tier is kind and (curve := LatencyCurve.from_points(other.latency)):
                guessed.append("latency")
                return curve.scaled(estimate.relative_speed(task, kind, precision, other.precision))
        if not params:
            return None
        guessed.append("latency")
        return estimate.roofline_curve(
            task, params, precision, kind, cpu_cores=cores, read_bandwidth=bandwidth
        )


def _unplannable(why: str) -> Figures:
    return Figures(0, 0, 0, None, None, 0.0, missing=why)
