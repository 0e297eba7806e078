"""TierClass: a cluster-scoped description of one memory tier of the fleet, like a StorageClass."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from . import defaults
from .base import ApiModel, cel
from .enums import TierKind
from .meta import ObjectMeta
from .quantities import Bandwidth, Memory, Price


class Toleration(ApiModel):
    """A core/v1 Toleration copied onto the pods placed on this tier."""

    key: str | None = None
    """Taint key to tolerate; empty with operator Exists tolerates every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """`Exists` or `Equal` (the default)."""
    value: str | None = None
    """Taint value, for operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; all effects when empty."""
    toleration_seconds: int | None = None
    """For NoExecute: how long the pod stays bound after the taint appears."""


class Pricing(ApiModel):
    """What the tier costs, in any one currency used consistently across TierClasses."""

    per_node_hour: Price
    """Price of one node (instance) for one hour."""
    per_gib_hour: Price = Field(default=Price.parse("0"), alias="perGiBHour")
    """Premium per GiB of memory held for one hour (the memory line of the TCO)."""


class OffloadSpec(ApiModel):
    """Where offload tiers keep memory-mapped weights on the node."""

    path: str = Field(pattern=r"^/.*")
    """Absolute path of the local NVMe mount (hostPath or local PV) on the node."""
    read_bandwidth: Bandwidth | None = None
    """Sustained read bandwidth of that disk, used to predict cold-start and streaming cost."""


class TierClassSpec(ApiModel):
    """Capacity, placement and price of one tier."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind != 'offload' || has(self.offload)",
                    "offload tiers need spec.offload.path",
                ),
            ]
        }
    )

    kind: TierKind
    """gpu: weights in device memory; cpu: in host memory; offload: mapped from local NVMe."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels that select the nodes of this tier (copied into the pods)."""
    tolerations: list[Toleration] = Field(default_factory=list)
    """Taints of this tier's nodes that its pods tolerate."""
    memory_per_node: Memory
    """Memory one replica can be placed in: for gpu the memory of one device,
    for cpu and offload the allocatable host memory of one node."""
    devices_per_node: int = Field(default=defaults.DEVICES_PER_NODE, ge=1)
    """gpu: accelerators per node (a replica uses one; the node's price is shared among them)."""
    cpu_per_node: float | None = Field(default=None, gt=0)
    """Allocatable CPU cores per node; when set, a replica's node share counts its cores too."""
    pricing: Pricing
    """What a node of this tier costs."""
    offload: OffloadSpec | None = None
    """offload: where the weights live on the node."""

    @model_validator(mode="after")
    def _offload_needs_path(self) -> TierClassSpec:
        if self.kind is TierKind.OFFLOAD and self.offload is None:
            raise ValueError("offload tiers need spec.offload.path")
        return self


class TierClass(ApiModel):
    """A memory tier of the fleet with its capacity and price (cluster-scoped)."""

    api_version: Literal["tierwise.dev/v1alpha1"] = "tierwise.dev/v1alpha1"
    """Always `tierwise.dev/v1alpha1`."""
    kind: Literal["TierClass"] = "TierClass"
    """Always `TierClass`."""
    metadata: ObjectMeta
    """Standard object metadata (cluster-scoped: no namespace)."""
    spec: TierClassSpec
    """The tier's capacity, placement and price."""

    @property
    def name(self) -> str:
        return self.metadata.name
