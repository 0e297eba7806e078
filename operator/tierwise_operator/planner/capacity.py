"""Memory per replica and where replicas fit: per node and per device, never the tier's sum."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ..api import TierClass, TierKind
from . import estimate
from .candidates import CandidateKey
from .figures import Figures
from .snapshot import MetricsSnapshot, NodeCapacity, Placement

_MIB = 2**20


@dataclass(frozen=True)
class ReplicaNeed:
    """What one replica requests: memory in its tier (device memory on gpu), host memory, cores."""

    tier_bytes: int
    host_bytes: int
    cpu: float
    gpu: bool


def replica_need(figures: Figures, kind: TierKind, context: int, batch: int) -> ReplicaNeed:
    """Resident memory plus a KV cache of `context` tokens for each of `batch` sequences."""
    kv = figures.kv_bytes_per_token * context * max(1, batch)
    tier_bytes = _round_up_mib(figures.resident_bytes + kv)
    if kind is TierKind.GPU:
        return ReplicaNeed(tier_bytes, estimate.GPU_HOST_MEMORY, figures.cpu_cores, gpu=True)
    return ReplicaNeed(tier_bytes, tier_bytes, figures.cpu_cores, gpu=False)


def batch_limit(figures: Figures, tier: TierClass, context: int) -> float:
    """The most sequences whose KV cache fits one node (or device) next to the weights, as
    `replica_need` rounds the request: a replica that fills the memory exactly still fits."""
    # round_up_mib(x) <= memory  <=>  x <= round_down_mib(memory)
    room = _round_down_mib(int(tier.spec.memory_per_node)) - figures.resident_bytes
    per_sequence = figures.kv_bytes_per_token * context
    if room < 0:
        return 0
    return math.inf if per_sequence == 0 else room // per_sequence


def _round_up_mib(n: int) -> int:
    return -(-n // _MIB) * _MIB


def _round_down_mib(n: int) -> int:
    return n // _MIB * _MIB


class Resource(StrEnum):
    """What a replica may run short of; `TOGETHER`: enough of each, never on the same node."""

    NODES = "nodes"
    DEVICES = "devices"
    DEVICE_MEMORY = "device memory"
    HOST_MEMORY = "host memory"
    MEMORY = "memory"
    CORES = "cores"
    TOGETHER = "together"


@dataclass(frozen=True)
class Shortfall:
    """The resource that keeps replicas out and how many it leaves room for."""

    resource: Resource
    fits: int


def node_misfit(need: ReplicaNeed, tier: TierClass) -> Resource | None:
    """What keeps one replica off an empty node (or device) of the tier; None when it fits."""
    spec = tier.spec
    if need.tier_bytes > spec.memory_per_node:
        return Resource.MEMORY
    if spec.cpu_per_node is not None and need.cpu > spec.cpu_per_node:
        return Resource.CORES
    return None


@dataclass
class NodeRoom:
    """Free room of one node for one planning round; mutated as replicas are placed."""

    name: str
    memory: int
    cpu: float | None
    devices: list[int] = field(default_factory=list)

    def fits(self, need: ReplicaNeed) -> int:
        """How many replicas of `need` this node can still take."""
        # The solvers call this in their inner loops: no dict, unlike by_resource.
        by_cpu = math.inf if self.cpu is None or need.cpu <= 0 else self.cpu // need.cpu
        if need.gpu:
            by_device = sum(1 for free in self.devices if free >= need.tier_bytes)
            return int(min(by_device, _per(self.memory, need.host_bytes), by_cpu))
        return int(min(_per(self.memory, need.tier_bytes), by_cpu))

    def by_resource(self, need: ReplicaNeed) -> dict[Resource, float]:
        """How many replicas each resource of this node alone leaves room for (the least
        of them is `fits`)."""
        by_cpu = math.inf if self.cpu is None or need.cpu <= 0 else self.cpu // need.cpu
        if need.gpu:
            return {
                Resource.DEVICES: len(self.devices),
                Resource.DEVICE_MEMORY: sum(1 for f in self.devices if f >= need.tier_bytes),
                Resource.HOST_MEMORY: _per(self.memory, need.host_bytes),
                Resource.CORES: by_cpu,
            }
        return {Resource.MEMORY: _per(self.memory, need.tier_bytes), Resource.CORES: by_cpu}


def _per(free: int, each: int) -> float:
    return free // each if each else math.inf


@dataclass
class TierPool:
    """The room a TierClass offers; `nodes is None` when capacity is unknown (elastic)."""

    tier: TierClass
    nodes: list[NodeRoom] | None

    def fits_a_node(self, need: ReplicaNeed) -> bool:
        """Whether one replica fits an empty node (or device) of this tier at all."""
        return node_misfit(need, self.tier) is None

    def max_replicas(self, need: ReplicaNeed) -> float:
        """Replicas that fit now (math.inf when capacity is elastic)."""
        if self.nodes is None:
            return math.inf if self.fits_a_node(need) else 0
        return sum(node.fits(need) for node in self.nodes)

    def holds(self, need: ReplicaNeed, count: int) -> bool:
        """Whether `count` replicas fit now (stops counting as soon as they do)."""
        if self.nodes is None:
            return count == 0 or self.fits_a_node(need)
        room = 0
        for node in self.nodes:
            room += node.fits(need)
            if room >= count:
                return True
        return count <= 0

    def shortfall(self, need: ReplicaNeed, count: int) -> Shortfall | None:
        """The first resource that, even on its own, leaves room for fewer than `count`
        replicas (devices before their memory, memory before cores); `TOGETHER` when each
        would do but no node has them all at once; None when the replicas fit."""
        if self.nodes is None:
            misfit = node_misfit(need, self.tier) if count > 0 else None
            return None if misfit is None else Shortfall(misfit, 0)
        if self.holds(need, count):
            return None
        if not self.nodes:
            return Shortfall(Resource.NODES, 0)
        totals: dict[Resource, float] = {}
        for node in self.nodes:
            for resource, room in node.by_resource(need).items():
                totals[resource] = totals.get(resource, 0) + room
        for resource, room in totals.items():  # in the order by_resource lists them
            if room < count:
                return Shortfall(resource, int(room))
        return Shortfall(Resource.TOGETHER, int(self.max_replicas(need)))

    def largest_slot(self, gpu: bool) -> int:
        """The most memory one replica could get on a single node or device."""
        if self.nodes is None:
            return int(self.tier.spec.memory_per_node)
        if gpu:
            return max((d for n in self.nodes for d in n.devices), default=0)
        return max((n.memory for n in self.nodes), default=0)


def build_pools(
    tiers: Sequence[TierClass],
    snapshot: MetricsSnapshot | None,
    movable: Mapping[str, CandidateKey | None],
) -> dict[str, TierPool]:
    """Room per TierClass, counting what the `movable` models hold now as free.

    `movable` maps each model being planned to the candidate it runs now. Only replicas
    of that candidate count as free: replicas of an earlier one are being replaced and keep
    their room until they are gone, so no other model is planned into it meanwhile.
    """
    if snapshot is None or snapshot.nodes is None:
        return {t.name: TierPool(t, None) for t in tiers}
    held: dict[str, list[Placement]] = {}
    for model, current in movable.items():
        running = None if current is None else str(current)
        for placement in snapshot.placements_of(model):
            if placement.candidate in (None, running) or running is None:
                held.setdefault(placement.node, []).append(placement)
    pools = {t.name: TierPool(t, []) for t in tiers}
    for node in snapshot.nodes_by_name:
        pool = pools.get(node.tier_class)
        if pool is not None and pool.nodes is not None:
            size = int(pool.tier.spec.memory_per_node)
            pool.nodes.append(_room(node, held.get(node.name, []), snapshot, size))
    return pools


def _room(
    node: NodeCapacity, held: list[Placement], snapshot: MetricsSnapshot, pool_size: int
) -> NodeRoom:
    on_host = [p for p in held if p.device is None]
    memory = int(node.free_memory) + sum(int(p.memory) for p in on_host)
    cpu = None if node.free_cpu is None else node.free_cpu + sum(p.cpu for p in held)
    devices = []
    for index, device in enumerate(node.devices):
        mine = [p for p in held if p.device == index]
        pinned = snapshot.holders(node.name, index) > len(mine)
        if pinned or (device.allocated and not mine):
            continue  # held by a pod that is not being re-planned
        freed = int(device.free) + sum(int(p.memory) for p in mine)
        # A replica's placement is the whole device; what it frees is at most the device.
        devices.append(min(freed, int(pool_size)) if mine else freed)
    return NodeRoom(node.name, memory, cpu, devices)


def clone_pools(pools: dict[str, TierPool]) -> dict[str, TierPool]:
    """A copy whose rooms can be used up without touching the original."""
    return {
        name: TierPool(
            pool.tier,
            None
            if pool.nodes is None
            else [NodeRoom(n.name, n.memory, n.cpu, list(n.devices)) for n in pool.nodes],
        )
        for name, pool in pools.items()
    }
