"""InferenceModel: a model to serve, the quality it may lose and the SLOs it must meet."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from . import defaults
from .base import ApiModel, cel
from .enums import Architecture, Precision, Task, TierKind
from .meta import Condition, ObjectMeta
from .profile import ModelProfile
from .quantities import Duration, Percentage, Price

SOURCE_PATTERN = r"^(file:///|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/|builtin://)\S+$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def matching_source(uri: str, pattern: str, what: str, examples: str) -> str:
    """`uri` if it matches `pattern`, else an error naming what it should be, with examples."""
    if not re.match(pattern, uri):
        raise ValueError(f'"{uri}" is not {what} (examples: {examples})')
    return uri


class ModelSource(ApiModel):
    uri: str = Field(json_schema_extra={"pattern": SOURCE_PATTERN})
    """Where the checkpoint is: `pvc://claim/path` (mounted read-only into the pods),
    `file:///path` (already on the node) or `builtin://all-minilm-l6-v2` /
    `builtin://smollm2-135m` (shipped with the runtime image)."""

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        examples = "pvc://models/minilm, file:///models/minilm, builtin://all-minilm-l6-v2"
        return matching_source(uri, SOURCE_PATTERN, "a model source", examples)


class ModelVariant(ApiModel):
    """Another checkpoint of the same service, e.g. a distilled student of the primary model."""

    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    """DNS label naming the variant in status and decisions (`primary` is the main model)."""
    source: ModelSource
    """Where the variant's checkpoint is."""
    architecture: Architecture | None = None
    """Defaults to the primary model's architecture."""
    parameters: int | None = Field(default=None, ge=1)
    """Parameter count, used to estimate memory before the variant is profiled."""

    @field_validator("name")
    @classmethod
    def _not_primary(cls, name: str) -> str:
        if name == "primary":
            raise ValueError('"primary" names spec.model.source; choose another variant name')
        return name


class ModelSpec(ApiModel):
    task: Task
    """What the model does: `text-embedding` (OpenAI /v1/embeddings) or `text-generation`
    (/v1/completions)."""
    architecture: Architecture
    """Model family: `bert` (encoder) or `llama` (decoder)."""
    source: ModelSource
    """Where the primary checkpoint is."""
    parameters: int | None = Field(default=None, ge=1)
    """Parameter count, used to estimate memory until a profile is measured."""
    context_length: int | None = Field(default=None, ge=1)
    """text-generation: tokens of KV cache to reserve per sequence (default 2048)."""
    variants: list[ModelVariant] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    """Other checkpoints that may serve instead; their accuracy is measured against the
    primary model's fp32 reference, so one budget governs quantization and distillation."""

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants: list[ModelVariant]) -> list[ModelVariant]:
        names = [v.name for v in variants]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"variant names must be unique (repeated: {', '.join(dupes)})")
        return variants


ADAPTER_SOURCE_PATTERN = r"^(file:///|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/)\S+$"


class AdapterSource(ApiModel):
    uri: str = Field(json_schema_extra={"pattern": ADAPTER_SOURCE_PATTERN})
    """Folder of a PEFT LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`):
    `pvc://claim/path` (mounted read-only into the pods) or `file:///path` (on the node)."""

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        examples = "pvc://adapters/support-bot, file:///adapters/support-bot"
        return matching_source(uri, ADAPTER_SOURCE_PATTERN, "an adapter source", examples)


class AdapterBudget(ApiModel):
    max_degradation: Percentage
    """The most this adapter's output may move, at the chosen base precision, from the same
    adapter on the fp32 base (the same measure as spec.accuracyBudget), e.g. `3%`."""

    @field_validator("max_degradation")
    @classmethod
    def _within_unit(cls, value: Percentage) -> Percentage:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{value} is outside 0..100%")
        return value


class Adapter(ApiModel):
    """A LoRA fine-tune served on the same replicas as the base model."""

    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    """DNS label; clients pass it (or `<model>:<name>`) as `model` in their requests."""
    source: AdapterSource
    """Where the adapter's files are."""
    accuracy_budget: AdapterBudget | None = None
    """How much the base's precision may change this adapter's output; unbounded when unset
    (the model's own budget still binds the base)."""


class ConfigMapKeyRef(ApiModel):
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """Name of the ConfigMap, in the InferenceModel's namespace."""
    key: str = Field(min_length=1)
    """Key holding the JSON-lines texts."""


class EvalSet(ApiModel):
    """Texts the accuracy delta is measured on (JSON lines, one `{"text": ...}` per line)."""

    config_map_ref: ConfigMapKeyRef | None = None
    """A key of a ConfigMap in the model's namespace; the bundled set when unset."""


class AccuracyBudget(ApiModel):
    max_degradation: Percentage
    """The most quality the model may lose against its fp32 reference, e.g. `2%`:
    1 - mean cosine for embeddings, relative perplexity increase for generation."""
    eval_set: EvalSet | None = None
    """The evaluation set; the bundled default when unset."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    # Standard CEL only (no strings extension), so every API
                    # server with CEL, and the tests, evaluate it the same way.
                    "self.maxDegradation.matches('^((100(\\\\.0+)?|[0-9]{1,2}(\\\\.[0-9]+)?|\\\\.[0-9]+)%"
                    "|(1(\\\\.0+)?|0(\\\\.[0-9]+)?|\\\\.[0-9]+))$')",
                    "maxDegradation must be within 0..100%",
                    ".maxDegradation",
                ),
            ]
        }
    )

    @field_validator("max_degradation")
    @classmethod
    def _within_unit(cls, value: Percentage) -> Percentage:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{value} is outside 0..100%")
        return value


class SLO(ApiModel):
    latency_p99: Duration | None = None
    """99th-percentile latency one request may take, e.g. `50ms`."""
    min_throughput: float | None = Field(default=None, ge=0)
    """Requests per second the service must be able to take at all times."""


class Traffic(ApiModel):
    target_rps: float | None = Field(default=None, ge=0, alias="targetRPS")
    """Requests per second to plan for at least; live traffic from metrics raises it."""
    headroom: Percentage = defaults.HEADROOM
    """Capacity kept above the traffic, e.g. `20%`."""


class ReplicaRange(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.min <= self.max", "replicas.min must not exceed replicas.max"),
            ]
        }
    )

    min: int = Field(default=defaults.REPLICAS_MIN, ge=0)
    """Fewest replicas, even without traffic."""
    max: int = Field(default=defaults.REPLICAS_MAX, ge=1)
    """Most replicas, whatever the traffic."""

    @model_validator(mode="after")
    def _ordered(self) -> ReplicaRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class InferenceModelSpec(ApiModel):
    """What to serve and what it must achieve; the operator decides how."""

    model: ModelSpec
    """The checkpoint to serve and its variants."""
    accuracy_budget: AccuracyBudget
    """How much quality quantization or distillation may cost."""
    slo: SLO = Field(default_factory=SLO)
    """Service-level objectives every plan must meet."""
    traffic: Traffic = Field(default_factory=Traffic)
    """Traffic to plan capacity for."""
    precisions: list[Precision] = Field(
        default_factory=lambda: list(defaults.PRECISIONS),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    """Precisions the planner may choose from; all when unset."""
    tier_classes: list[str] = Field(
        default_factory=list, max_length=64, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Names of the TierClasses the model may run on; all when unset or empty."""
    replicas: ReplicaRange = Field(default_factory=ReplicaRange)
    """Bounds on the replica count the planner chooses."""
    priority: int = defaults.PRIORITY
    """Who keeps scarce GPU memory first: a higher priority is never displaced by a lower."""
    profile: ModelProfile | None = None
    """A measured profile given inline; the operator then runs no profile Job."""
    adapters: list[Adapter] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    """LoRA adapters served on the base's replicas. Editing the list rewrites a ConfigMap the
    replicas re-read, without restarting them (but the first adapter added, or the last
    removed, changes the pod template once, as does a new pvc claim)."""
    max_resident_adapters: int = Field(default=4, ge=1, le=64)
    """Adapters each replica holds in memory at once (least recently used leave first; the
    rest load on demand); the planner counts their bytes in each replica's memory."""

    @field_validator("adapters")
    @classmethod
    def _unique_adapters(cls, adapters: list[Adapter]) -> list[Adapter]:
        names = [a.name for a in adapters]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"adapter names must be unique (repeated: {', '.join(dupes)})")
        return adapters

    @field_validator("precisions")
    @classmethod
    def _some_precision(cls, precisions: list[Precision]) -> list[Precision]:
        if not precisions:
            raise ValueError("list at least one precision, or leave the field out for all")
        return list(dict.fromkeys(precisions))

    @property
    def context_length(self) -> int:
        return self.model.context_length or defaults.CONTEXT_LENGTH


class AccuracyStatus(ApiModel):
    delta: Percentage
    """Measured quality loss of the running candidate."""
    budget: Percentage
    """The budget it is held to (spec.accuracyBudget.maxDegradation)."""


class MemoryStatus(ApiModel):
    weight_bytes: int = Field(ge=0)
    """Bytes the weights take at the chosen precision."""
    request_bytes: int = Field(ge=0)
    """Memory each replica requests (weights, KV cache and runtime overhead)."""


class CostStatus(ApiModel):
    per_hour: Price
    """Cost of all replicas for one hour (node share plus memory premium)."""
    per1k_inferences: Price = Field(alias="per1kInferences")
    """Cost of 1,000 inferences at the planned traffic."""
    baseline_per1k_inferences: Price | None = Field(default=None, alias="baselinePer1kInferences")
    """Cost per 1k inferences of the same model at fp16 on the cheapest GPU tier, for comparison."""


class RejectedCandidate(ApiModel):
    candidate: str
    """variant/precision/tierClass, e.g. `int4/cpu-large`."""
    why: str
    """The first constraint it broke, in words."""


class Decision(ApiModel):
    reason: str
    """Why the chosen candidate won, with its figures."""
    estimated: bool = False
    """True while no measured profile exists and figures are estimated from parameter counts."""
    rejected: list[RejectedCandidate] = Field(default_factory=list)
    """Every other candidate with the first constraint it broke (or how much more it costs)."""
    decided_at: str | None = None
    """RFC 3339 time the decision was first reached (re-plans that reach it again keep it)."""
    change: (
        Literal[
            "initial",
            "scale-up",
            "scale-down",
            "re-tier",
            "re-precision",
            "re-variant",
            "kept",
            "infeasible",
            "displaced",
        ]
        | None
    ) = None
    """What the decision changed: `initial`, `scale-up`, `scale-down`, `re-tier`,
    `re-precision`, `re-variant`, `kept` (nothing), `infeasible` (no candidate meets the
    constraints; the current plan keeps serving) or `displaced` (models of higher priority,
    or cheaper to serve there, hold all the room it could run in: zero replicas until room
    frees)."""
    solver: Literal["exact", "heuristic", "single"] | None = None
    """Which planner decided: the fleet's `exact` MILP (HiGHS proved the optimum), its
    `heuristic` (fleets too large or slow to prove), or `single` (one model planned alone)."""
    round: str | None = None
    """The fleet planning round that first reached this decision (`r17@2026-12-04T10:00:00Z`)."""
    displaced_by: list[str] = Field(default_factory=list, max_length=16)
    """Models (`namespace/name`) holding the room this model would run in alone."""


class FailedCandidate(ApiModel):
    """A candidate whose replicas failed (OOMKilled, crash loop); excluded until `retryAfter`."""

    candidate: str
    """variant/precision/tierClass that failed."""
    reason: str
    """What happened, e.g. `OOMKilled` or `CrashLoopBackOff`, with detail."""
    at: str
    """RFC 3339 time the failure was seen."""
    retry_after: str
    """RFC 3339 time after which the planner may choose the candidate again."""


class ReplicaRecommendation(ApiModel):
    """A replica count the planner recommended, kept for the scale-down stabilisation window."""

    at: str
    """RFC 3339 time from which the recommendation stands."""
    replicas: int = Field(ge=0)
    """Replicas the traffic needed from then on, on the chosen candidate."""


class InferenceModelStatus(ApiModel):
    """Written by the operator only."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    variant: str | None = None
    """Chosen checkpoint: `primary` or a variant's name."""
    precision: Precision | None = None
    """Chosen precision."""
    tier: TierKind | None = None
    """Kind of the chosen tier."""
    tier_class: str | None = None
    """Chosen TierClass."""
    replicas: int | None = None
    """Planned replica count."""
    ready_replicas: int | None = None
    """Replicas passing their readiness probe."""
    accuracy: AccuracyStatus | None = None
    """Measured quality loss against the budget."""
    memory: MemoryStatus | None = None
    """Memory per replica."""
    cost: CostStatus | None = None
    """What the plan costs, next to the fp16-on-GPU baseline."""
    decision: Decision | None = None
    """The planner's last decision and why."""
    tier_changed_at: str | None = None
    """RFC 3339 time the variant, precision or TierClass last changed (for the minimum dwell)."""
    scaled_at: str | None = None
    """RFC 3339 time the replica count last changed."""
    replica_recommendations: list[ReplicaRecommendation] = Field(
        default_factory=list, max_length=256
    )
    """Recent replica recommendations, each standing until the next: the planner scales down
    only to the highest in force during the stabilisation window, like the
    HorizontalPodAutoscaler. A recommendation is recorded only when it changes."""
    profile: ModelProfile | None = None
    """The measured profile the decision used."""
    profile_key: str | None = None
    """Identity of what was profiled (model, variants, eval set); a change re-profiles."""
    failed_candidates: list[FailedCandidate] = Field(default_factory=list)
    """Candidates excluded after their replicas failed."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    """Ready, Progressing, Degraded, Profiled, AccuracyWithinBudget, SLOMet, MetricsAvailable,
    InputsResolved, AdaptersReady."""


class InferenceModel(ApiModel):
    """A model to serve within an accuracy budget and SLOs, at the lowest cost (namespaced)."""

    api_version: Literal["tierwise.dev/v1alpha1"] = "tierwise.dev/v1alpha1"
    """Always `tierwise.dev/v1alpha1`."""
    kind: Literal["InferenceModel"] = "InferenceModel"
    """Always `InferenceModel`."""
    metadata: ObjectMeta
    """Standard object metadata."""
    spec: InferenceModelSpec
    """Desired state."""
    status: InferenceModelStatus | None = None
    """Observed state, written by the operator."""

    @property
    def name(self) -> str:
        return self.metadata.name
