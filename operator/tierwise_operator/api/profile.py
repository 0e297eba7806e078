"""ModelProfile: what `tierwise-runtime profile` measured; one schema for runtime and operator."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApiModel
from .enums import Architecture, Precision, Task, TierKind

PRIMARY_VARIANT = "primary"
"""Name of the checkpoint in `spec.model.source`; other variants are named in the spec."""


class LatencyPoint(ApiModel):
    """Latency and throughput measured at one batch size, after warm-up."""

    batch: int = Field(ge=1)
    """Requests (texts or prompts) per forward pass."""
    p50_ms: float = Field(ge=0)
    """Median latency of one batch, milliseconds."""
    p99_ms: float = Field(ge=0)
    """99th-percentile latency of one batch, milliseconds."""
    throughput: float = Field(ge=0)
    """Requests completed per second by one replica at this batch size."""
    samples: int = Field(default=0, ge=0)
    """How many timed repetitions the percentiles come from."""


class AccuracyMeasure(ApiModel):
    """Quality lost against the primary variant's fp32 reference on the evaluation set."""

    delta: float = Field(ge=0)
    """The figure the accuracy budget is checked against, as a fraction: for embeddings
    1 - mean cosine similarity, for generation the relative perplexity increase."""
    cosine_mean: float | None = None
    """Embeddings: mean cosine similarity to the fp32 reference."""
    cosine_p5: float | None = None
    """Embeddings: 5th-percentile cosine similarity (the worst texts)."""
    perplexity: float | None = None
    """Generation: perplexity on the evaluation set."""
    top1_agreement: float | None = None
    """Generation: fraction of positions whose greedy next token matches fp32's."""


class MachineInfo(ApiModel):
    """The machine the numbers come from: profiles from different machines are never mixed."""

    cpu: str
    """CPU model name."""
    threads: int = Field(ge=1)
    """Threads torch computed with."""
    gpu: str | None = None
    """GPU name, when one was used."""
    torch: str = ""
    """torch version."""


class Int4Calibration(ApiModel):
    """How an int4 candidate's 4-bit codes were fitted (the bytes are the same either way)."""

    method: Literal["gptq", "rtn"]
    """`gptq`: fitted to each layer's inputs on the runtime's bundled calibration texts (none
    of them an eval text), what `--precision int4` serves on gpu and cpu tiers; `rtn`:
    round-to-nearest, what the offload tier serves."""
    rtn_accuracy: AccuracyMeasure | None = None
    """With gptq: the quality round-to-nearest codes keep at the same bytes, for comparison."""


class CandidateProfile(ApiModel):
    """One way to run the model: a variant at a precision on a tier."""

    variant: str = PRIMARY_VARIANT
    """Which checkpoint: `primary` or the name of one of `spec.model.variants`."""
    precision: Precision
    """Weight format."""
    tier: TierKind
    """gpu: weights on the device; cpu: in host memory; offload: memory-mapped from local disk."""
    weight_bytes: int = Field(ge=0)
    """Bytes the weights take at this precision."""
    load_seconds: float = Field(default=0.0, ge=0)
    """Time from process start of the load to the first servable state."""
    peak_memory_bytes: int = Field(ge=0)
    """Peak memory while serving: process RSS on cpu/offload, device memory on gpu."""
    kv_cache_bytes_per_token: int | None = Field(default=None, ge=0)
    """Decoders: KV-cache bytes one token of context costs."""
    latency: list[LatencyPoint] = Field(default_factory=list)
    """Latency and throughput by batch size."""
    accuracy: AccuracyMeasure | None = None
    """Quality loss against the primary fp32 reference."""
    calibration: Int4Calibration | None = None
    """int4: how the codes were fitted; `accuracy` is that of the codes served."""
    error: str | None = None
    """Why this candidate could not be measured (it is then never chosen)."""
    machine: MachineInfo | None = None
    """Where this candidate was measured, when profiles from several machines were merged
    (GPU candidates on a GPU node, CPU candidates on a CPU node)."""


class ProfiledModel(ApiModel):
    """The checkpoint that was profiled, identified by content so a change re-profiles."""

    uri: str
    """The model source as given in the spec."""
    digest: str = ""
    """sha256 over the checkpoint's config and weight files."""
    task: Task
    """What the model does."""
    architecture: Architecture
    """Model family."""
    parameters: int = Field(ge=0)
    """Parameter count of the primary checkpoint."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Longest input the model accepts, in tokens."""


class EvalSetInfo(ApiModel):
    """Which evaluation texts the accuracy figures come from."""

    name: str
    """`builtin://default`, a file name, or `configmap/<name>/<key>`."""
    digest: str = ""
    """sha256 of the texts."""
    size: int = Field(ge=0)
    """Number of texts."""


class AdapterAccuracy(ApiModel):
    """How far an adapter's output moves when the base runs at one precision, against the
    same adapter on the fp32 base (the model's own accuracy measure)."""

    precision: Precision
    """Precision of the base."""
    tier: TierKind
    """Tier the base ran on."""
    delta: float = Field(ge=0)
    """1 - mean cosine for embeddings, relative perplexity increase for generation."""


class AdapterProfile(ApiModel):
    """What one LoRA adapter of `spec.adapters` costs and how the base's precision moves it."""

    name: str
    """The adapter's name in the spec."""
    uri: str
    """Its source as profiled."""
    resident_bytes: int | None = Field(default=None, ge=0)
    """Bytes it takes resident in a replica (its A and B matrices as served)."""
    rank: int | None = Field(default=None, ge=1)
    """Its largest LoRA rank."""
    load_ms: float | None = Field(default=None, ge=0)
    """A cold load from its files, milliseconds."""
    mixed_batch_overhead: float | None = None
    """Latency of a batch mixing this adapter, others and the base, relative to the same
    batch on the base alone (0.1 = 10% slower)."""
    accuracy: list[AdapterAccuracy] = Field(default_factory=list)
    """Per base precision and tier."""
    error: str | None = None
    """Why the adapter cannot be served (missing files, a rank or module the base lacks)."""

    def delta(self, precision: Precision, tier: TierKind) -> float | None:
        """Its measured delta at `precision` (on `tier`, else on any tier measured)."""
        same = [a for a in self.accuracy if a.precision is precision]
        exact = [a for a in same if a.tier is tier]
        return (exact or same)[0].delta if (exact or same) else None


class ModelProfile(ApiModel):
    """Measured figures for every candidate of one model, written by `tierwise-runtime profile`."""

    schema_version: Literal[1] = 1
    """Version of this schema; readers refuse versions they do not know."""
    model: ProfiledModel
    """The primary checkpoint that was profiled."""
    eval_set: EvalSetInfo | None = None
    """Where the accuracy figures come from."""
    machine: MachineInfo | None = None
    """Where the latency figures come from."""
    created_at: str | None = None
    """RFC 3339 time of the measurement."""
    candidates: list[CandidateProfile] = Field(default_factory=list)
    """One entry per variant x precision x tier measured."""
    adapters: list[AdapterProfile] = Field(default_factory=list)
    """One entry per LoRA adapter of spec.adapters, measured on the primary checkpoint."""

    def candidate(
        self, precision: Precision, tier: TierKind, variant: str = PRIMARY_VARIANT
    ) -> CandidateProfile | None:
        for cand in self.candidates:
            if (cand.precision, cand.tier, cand.variant) == (precision, tier, variant):
                return cand
        return None
