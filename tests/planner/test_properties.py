"""Properties over random inputs: determinism, optimality against brute force, stability
under small oscillations, priorities never inverted, exact never worse than the heuristic."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.planner import CurrentPlan, PlannerSettings, decide
from tierwise_operator.planner.candidates import enumerate_candidates
from tierwise_operator.planner.capacity import batch_limit, replica_need
from tierwise_operator.planner.cost import replica_hour
from tierwise_operator.planner.figures import FigureSource
from tierwise_operator.planner.fleet import plan_fleet
from tierwise_operator.planner.latency import OperatingPoint

from .conftest import NOW, entry, later, metrics, model, point, profile, snapshot, tier

TIERS = [
    tier("gpu", "gpu", memory="24Gi", price="8.00", per_gib="0.05", devices=4, cpu=64),
    tier("cpu", memory="64Gi", price="0.81", per_gib="0.004", cpu=16),
    tier("nvme", "offload", memory="32Gi", price="0.60", per_gib="0.002", cpu=8),
]
#: Only the dwell time holds plans steady (the switch margin would hide its absence).
NO_MARGIN = PlannerSettings(switch_margin=Decimal(0))
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def measured(draw: st.DrawFn, precision: str, kind: str) -> dict[str, Any]:
    base = draw(st.floats(5, 200))
    rate = draw(st.floats(2, 3000))
    gain = draw(st.floats(1.0, 6.0))
    return entry(
        precision, kind, draw(st.floats(0.05, 12)), draw(st.floats(0, 0.04)),
        [point(1, base, rate), point(16, base * draw(st.floats(1.5, 8)), rate * gain)],
            kv_per_token=draw(st.sampled_from([0, 0, 4096, 65536])),
    )  # fmt: skip


@st.composite
def models(draw: st.DrawFn, name: str = "m", priority: int = 0) -> InferenceModel:
    pairs = [(p, k) for p in ("fp16", "int8", "int4") for k in ("gpu", "cpu", "offload")]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=5, unique=True))
    prof = profile(*(draw(measured(p, k)) for p, k in chosen), task="text-generation")
    return model(
        name,
        task="text-generation",
        budget=draw(st.sampled_from(["1%", "2%", "5%"])),
        slo=draw(st.sampled_from(["100ms", "500ms", "2s", "30s"])),
        rps=draw(st.floats(0, 2000)),
        headroom=draw(st.sampled_from(["0%", "20%"])),
        precisions=sorted({p for p, _ in chosen}),
        replicas=(draw(st.integers(0, 2)), draw(st.integers(2, 40))),
        priority=priority,
        prof=prof,
    )


@st.composite
def contender(draw: st.DrawFn, name: str, priority: int) -> InferenceModel:
    """A model that fits and meets its SLO on both GPU and CPU: it is all about room."""
    prof = profile(
        *(draw(measured(p, k)) for p in ("fp16", "int8") for k in ("gpu", "cpu")),
        task="text-generation",
    )
    return model(name, task="text-generation", budget="5%", slo="30s",
                 rps=draw(st.floats(1, 3000)), precisions=["fp16", "int8"],
                 replicas=(1, 40), priority=priority, prof=prof)  # fmt: skip


def brute_force_cheapest(m: InferenceModel, tiers: list[TierClass]) -> Decimal | None:
    """Every candidate x every replica count x every batch cap, checked from the definitions."""
    source, best = FigureSource(m), None
    slo = m.spec.slo.latency_p99
    rps = (m.spec.traffic.target_rps or 0) * (1 + float(m.spec.traffic.headroom))
    for c in enumerate_candidates(m, tiers):
        f = source.figures(c.key.variant, c.key.precision, c.tier)
        if f.curve is None or f.accuracy_delta is None:
            continue
        if f.accuracy_delta > float(m.spec.accuracy_budget.max_degradation):
            continue
        limit = batch_limit(f, c.tier, m.spec.context_length)
        for cap in sorted({math.ceil(p.batch) for p in f.curve.grid}):
            if cap > limit:
                continue
            for n in range(m.spec.replicas.min, m.spec.replicas.max + 1):
                if rps > 0 and n == 0:
                    continue
                ok = any(_serves(p, cap, rps / n if n else 0.0, slo) for p in f.curve.grid)
                need = replica_need(f, c.kind, m.spec.context_length, cap)
                if ok and need.tier_bytes <= c.tier.spec.memory_per_node:
                    cost = replica_hour(c.tier, need) * n
                    best = cost if best is None else min(best, cost)
                    break  # more replicas only cost more
    return best


def _serves(p: OperatingPoint, cap: int, rate: float, slo: float | None) -> bool:
    """A replica at this batch takes `rate` within the SLO (an idle one must beat it)."""
    if p.batch > cap or p.throughput < rate:
        return False
    if slo is None:
        return True
    # p99 x (1 + rate / throughput) <= SLO, rearranged so a vanishing rate cannot round a
    # violation away; an idle replica must beat the SLO outright.
    return p.p99_s < slo if rate == 0 else rate / p.throughput <= slo / p.p99_s - 1


@EXAMPLES
@given(models())
def test_decisions_are_deterministic(m: InferenceModel) -> None:
    assert decide(m, TIERS, NOW).status_fields() == decide(m, TIERS, NOW).status_fields()


@EXAMPLES
@given(models())
def test_no_feasible_candidate_is_cheaper_than_the_chosen_one(m: InferenceModel) -> None:
    plan = decide(m, TIERS, NOW)
    cheapest = brute_force_cheapest(m, TIERS)
    if cheapest is None:
        assert not plan.feasible
        return
    assert plan.feasible and plan.per_hour is not None
    # The brute force reserves KV cache for its cap, the planner for the batch it runs at,
    # which is never more: the planner may only be cheaper.
    assert plan.per_hour <= cheapest * (1 + Decimal("1e-12"))


@EXAMPLES
@given(
    st.one_of(models(), contender("m", 0)),
    st.lists(st.floats(-0.05, 0.05), min_size=1, max_size=6),
    st.data(),
)
def test_small_oscillations_never_flip_the_candidate_inside_the_dwell_time(
    m: InferenceModel, wiggles: list[float], data: st.DataObject
) -> None:
    base = m.spec.traffic.target_rps or 0.0
    m = model(**{**_kwargs(m), "rps": 0.0})  # traffic from metrics only
    first = decide(m, TIERS, NOW, snapshot=snapshot(metrics(base)), settings=NO_MARGIN)
    if first.chosen is None:
        return
    current = _current_of(first)
    for i, wiggle in enumerate(wiggles, start=1):
        at = later(data.draw(st.floats(0.5, 2.0)) * i)
        plan = decide(m, TIERS, at, snapshot=snapshot(metrics(base * (1 + wiggle), at=at), at=at),
                      current=current, settings=NO_MARGIN)  # fmt: skip
        assert plan.chosen is not None
        if plan.chosen.key != first.chosen.key:
            running = next(e for e in plan.rejected if e.candidate == str(first.chosen.key))
            assert not running.why.startswith(("cost", "same cost", "cheaper", "would save"))
        current = _current_of(plan)


def _kwargs(m: InferenceModel) -> dict[str, Any]:
    spec = m.spec
    return {
        "name": m.name, "task": "text-generation",
        "budget": str(spec.accuracy_budget.max_degradation),
        "slo": str(spec.slo.latency_p99), "headroom": str(spec.traffic.headroom),
        "precisions": [str(p) for p in spec.precisions],
        "replicas": (spec.replicas.min, spec.replicas.max),
        "prof": spec.profile.to_wire() if spec.profile else None,
    }  # fmt: skip


def _current_of(plan: Any) -> CurrentPlan:
    return CurrentPlan(
        plan.chosen.key, plan.replicas, plan.tier_changed_at, plan.scaled_at, plan.recommendations
    )


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[InferenceModel], Any]:
    count = draw(st.integers(2, 4))
    priorities = st.sampled_from([0, 10, 20])
    ms = [draw(contender(f"m{i}", draw(priorities))) for i in range(count)]
    devices = [{"free": f"{draw(st.integers(4, 24))}Gi"} for _ in range(draw(st.integers(1, 3)))]
    gpu = {"name": "g", "tierClass": "gpu", "freeMemory": "1Ti", "devices": devices}
    cpus = [
        {"name": f"c{i}", "tierClass": "cpu", "freeMemory": f"{draw(st.integers(8, 64))}Gi",
         "freeCpu": draw(st.integers(4, 16))}
        for i in range(draw(st.integers(1, 2)))
    ]  # fmt: skip
    nvme = [{"name": "n", "tierClass": "nvme", "freeMemory": "32Gi", "freeCpu": 8}]
    return ms, snapshot(nodes=[gpu, *cpus, *nvme])


def _level_costs(fleet: Any, ms: list[InferenceModel], level: int) -> tuple[Decimal, int]:
    keys = {f"default/{m.name}" for m in ms if m.spec.priority == level}
    plans = [p for p in fleet.plans if p.model in keys]
    cost = sum((p.per_hour or Decimal(0) for p in plans if p.feasible), Decimal(0))
    return cost, sum(1 for p in plans if not p.feasible)


@EXAMPLES
@given(fleets(), st.sampled_from(["exact", "heuristic"]))
def test_lower_priorities_never_change_what_higher_ones_get(
    fleet_input: tuple[list[InferenceModel], Any], solver: str
) -> None:
    ms, snap = fleet_input
    full = plan_fleet(ms, TIERS, NOW, snapshot=snap, solver=solver)
    for level in sorted({m.spec.priority for m in ms}):
        upper = [m for m in ms if m.spec.priority >= level]
        alone = plan_fleet(upper, TIERS, NOW, snapshot=snap, solver=solver)
        got, want = _level_costs(full, ms, level), _level_costs(alone, upper, level)
        assert got[1] == want[1]
        assert abs(got[0] - want[0]) <= Decimal("1e-6") * (1 + want[0])


@EXAMPLES
@given(fleets())
def test_the_exact_solver_is_never_worse_than_the_heuristic(
    fleet_input: tuple[list[InferenceModel], Any],
) -> None:
    ms, snap = fleet_input
    exact = plan_fleet(ms, TIERS, NOW, snapshot=snap, solver="exact")
    greedy = plan_fleet(ms, TIERS, NOW, snapshot=snap, solver="heuristic")
    for level in sorted({m.spec.priority for m in ms}, reverse=True):
        e, g = _level_costs(exact, ms, level), _level_costs(greedy, ms, level)
        if (e[1], e[0]) != (g[1], g[0]):  # the first level that differs must favour exact
            assert e[1] < g[1] or (e[1] == g[1] and e[0] <= g[0] * (1 + Decimal("1e-9")))
            break


@EXAMPLES
@given(st.lists(models(), min_size=2, max_size=4))
def test_without_contention_exact_and_heuristic_agree(ms: list[InferenceModel]) -> None:
    ms = [model(**{**_kwargs(m), "name": f"m{i}", "rps": m.spec.traffic.target_rps})
          for i, m in enumerate(ms)]  # fmt: skip
    exact = plan_fleet(ms, TIERS, NOW, solver="exact")
    greedy = plan_fleet(ms, TIERS, NOW, solver="heuristic")
    assert [p.per_hour for p in exact.plans] == [p.per_hour for p in greedy.plans]


def _used(fleet: Any) -> tuple[dict[str, int], dict[str, float], list[int]]:
    """Host memory and cores per tier, and each GPU replica's device memory, as planned."""
    memory: dict[str, int] = {}
    cores: dict[str, float] = {}
    devices: list[int] = []
    for p in fleet.plans:
        if p.chosen is None or p.chosen.need is None or not p.replicas:
            continue
        need, tier_name = p.chosen.need, p.tier_class
        cores[tier_name] = cores.get(tier_name, 0.0) + need.cpu * p.replicas
        if need.gpu:
            devices += [need.tier_bytes] * p.replicas
        else:
            memory[tier_name] = memory.get(tier_name, 0) + need.tier_bytes * p.replicas
    return memory, cores, devices


@EXAMPLES
@given(fleets(), st.sampled_from(["exact", "heuristic"]))
def test_no_tier_is_over_committed_across_models(
    fleet_input: tuple[list[InferenceModel], Any], solver: str
) -> None:
    ms, snap = fleet_input
    fleet = plan_fleet(ms, TIERS, NOW, snapshot=snap, solver=solver)
    memory, cores, devices = _used(fleet)
    for tier_name, used in memory.items():
        free = sum(int(n.free_memory) for n in snap.nodes if n.tier_class == tier_name)
        assert used <= free
    for tier_name, used in cores.items():
        free_cpu = [n.free_cpu for n in snap.nodes if n.tier_class == tier_name]
        if None not in free_cpu:
            assert used <= sum(c for c in free_cpu if c is not None) + 1e-9
    # One replica per device, each on a device with room for it (Hall: the k largest needs
    # fit the k largest devices).
    free_devices = sorted((int(d.free) for n in snap.nodes for d in n.devices), reverse=True)
    assert len(devices) <= len(free_devices)
    for need, device in zip(sorted(devices, reverse=True), free_devices, strict=False):
        assert need <= device


@EXAMPLES
@given(st.lists(models(), min_size=1, max_size=4))
def test_with_ample_room_the_fleet_costs_what_each_model_costs_alone(
    ms: list[InferenceModel],
) -> None:
    ms = [model(**{**_kwargs(m), "name": f"m{i}", "rps": m.spec.traffic.target_rps})
          for i, m in enumerate(ms)]  # fmt: skip
    huge = [{"name": "g", "tierClass": "gpu", "freeMemory": "64Ti",
             "devices": [{"free": "24Gi"}] * 400}]  # fmt: skip
    huge += [{"name": f"c{i}", "tierClass": t, "freeMemory": "64Ti", "freeCpu": 100_000}
             for i, t in enumerate(["cpu", "nvme"])]  # fmt: skip
    snap = snapshot(nodes=huge)
    fleet = plan_fleet(ms, TIERS, NOW, snapshot=snap)
    alone = [decide(m, TIERS, NOW, snapshot=snap) for m in ms]
    assert [p.per_hour for p in fleet.plans] == [p.per_hour for p in alone]
    assert all(p.displacement is None for p in fleet.plans)
