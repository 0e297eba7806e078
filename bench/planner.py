"""Planner benchmark: planning time for a large fleet, and the heuristic's cost gap to the
exact MILP optimum on random contended fleets. One command; prints ratios to the targets.

    python bench/planner.py                      # 1,000 models x 200 nodes; 40 small fleets
    python bench/planner.py --models 200 --fleets 10

It also times the operator's periodic round: one `decide` per model against a snapshot
that holds every model's replicas and traffic, at growing fleet sizes. The time per
model should not grow with the fleet (a round is then linear in it).

And the live fleet round as the operator runs it — the snapshot built from Node and Pod
objects, then one fleet assignment over every model — side by side with the loop of
per-model `decide` calls it replaced, on the same objects.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleets
from tierwise_operator.api import InferenceModel
from tierwise_operator.planner import MetricsSnapshot, decide
from tierwise_operator.planner.fleet import FleetPlan, plan_fleet

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)
TIME_TARGET_S = 2.0
GAP_TARGET = 0.02


def timing(models: int, nodes: int, seed: int, repeats: int) -> None:
    rng = random.Random(seed)
    tiers = fleets.tiers()
    fleet = [fleets.model(rng, i) for i in range(models)]
    snap = fleets.snapshot(rng, nodes, NOW)
    runs, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = plan_fleet(fleet, tiers, NOW, snapshot=snap)
        runs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    best = min(runs)
    placed = sum(p.feasible for p in result.plans)
    shown = ", ".join(f"{r:.2f}" for r in runs)
    print(f"planning {models} models x {len(snap.nodes or [])} nodes: best {best:.2f} s ({shown})")
    print(f"  process CPU time, best: {min(cpu):.2f} s (less sensitive to a shared machine)")
    print(f"  solver: {result.solver} ({result.solver_reason}); {placed}/{models} placed")
    print(f"  time / target ({TIME_TARGET_S:.0f} s): {best / TIME_TARGET_S:.2f}")


def round_timing(sizes: list[int], nodes: int, seed: int, sample: int) -> None:
    """ms per model of a re-plan round, as the fleet (and so the snapshot) grows."""
    tiers = fleets.tiers()
    per_model: list[float] = []
    for size in sizes:
        rng = random.Random(seed)
        fleet = [fleets.model(rng, i) for i in range(size)]
        snap = _with_replicas(fleets.snapshot(rng, nodes, NOW), fleet, rng)
        planned = fleet[:: max(1, size // sample)][:sample]
        decide(planned[0], tiers, NOW, snapshot=snap)  # builds the snapshot's indices once
        start = time.process_time()
        for model in planned:
            decide(model, tiers, NOW, snapshot=snap)
        per_model.append((time.process_time() - start) / len(planned) * 1000)
        print(f"re-plan round, {size} models' replicas in the snapshot: "
              f"{per_model[-1]:.2f} ms CPU per model ({len(planned)} timed)")  # fmt: skip
    growth = per_model[-1] / per_model[0]
    print(f"  per-model time at {sizes[-1]} / at {sizes[0]} models: {growth:.2f} (1.00 = linear)")


def _with_replicas(
    snap: MetricsSnapshot, fleet: list[InferenceModel], rng: random.Random
) -> MetricsSnapshot:
    """Every model runs one replica on a cpu node and reports its traffic."""
    hosts = [n.name for n in snap.nodes or [] if n.tier_class == "cpu-large"]
    placements, models = [], []
    for model in fleet:
        namespace = model.metadata.namespace or "default"
        key = f"{namespace}/{model.name}"
        placements.append({"model": key, "node": rng.choice(hosts), "memory": "1Gi", "cpu": 1})
        rate, seen = rng.uniform(0, 20), NOW.isoformat()
        models.append(
            {"namespace": namespace, "name": model.name, "requestRate": rate, "observedAt": seen}
        )
    wire = snap.model_dump(mode="json", by_alias=True, exclude_none=True)
    return MetricsSnapshot.model_validate(wire | {"placements": placements, "models": models})


def _cluster(
    snap: MetricsSnapshot, fleet: list[InferenceModel], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Node and Pod objects behind `snap`: the tier label, allocatable room, and one serving
    replica of every model on a random cpu node."""
    nodes = []
    for n in snap.nodes or []:
        allocatable = {"memory": str(int(n.free_memory)), "cpu": str(n.free_cpu or 64),
                       "pods": "250", "nvidia.com/gpu": str(len(n.devices))}  # fmt: skip
        meta = {"name": n.name, "labels": {fleets.TIER_LABEL: n.tier_class}}
        nodes.append({"metadata": meta, "status": {"allocatable": allocatable}})
    hosts = [n.name for n in snap.nodes or [] if n.tier_class == "cpu-large"]
    pods = []
    for model in fleet:
        labels = {"tierwise.dev/model": model.name, "app.kubernetes.io/component": "serving"}
        meta = {"name": f"{model.name}-0", "namespace": "bench", "labels": labels,
                "annotations": {"tierwise.dev/candidate": "fp32/cpu-large"}}  # fmt: skip
        resources = {"requests": {"memory": "1Gi", "cpu": "1"}}
        spec = {"nodeName": rng.choice(hosts),
                "containers": [{"name": "runtime", "resources": resources}]}  # fmt: skip
        pods.append({"metadata": meta, "spec": spec, "status": {"phase": "Running"}})
    return nodes, pods


def live_round(models: int, node_count: int, seed: int, repeats: int) -> None:
    """The operator's fleet round vs the per-model loop, snapshot building included."""
    from tierwise_operator.metrics.observation import Observation
    from tierwise_operator.metrics.snapshot import build_snapshot

    rng = random.Random(seed)
    tiers = fleets.tiers()
    fleet = [fleets.model(rng, i) for i in range(models)]
    nodes, pods = _cluster(fleets.snapshot(rng, node_count, NOW), fleet, rng)
    seen = Observation(at=NOW, source="bench", available=True, reason="", message="")

    def snapshot() -> MetricsSnapshot:
        return build_snapshot(tiers=tiers, nodes=nodes, pods=pods, observation=seen,
                              metrics_at=NOW)  # fmt: skip

    def fleet_round() -> int:
        return sum(p.feasible for p in plan_fleet(fleet, tiers, NOW, snapshot=snapshot()).plans)

    def per_model_loop() -> int:
        snap = snapshot()
        return sum(decide(m, tiers, NOW, snapshot=snap).feasible for m in fleet)

    results: dict[str, list[tuple[float, float]]] = {"fleet round": [], "per-model loop": []}
    placed: dict[str, int] = {}
    for _ in range(repeats):  # interleaved, so both see the same machine
        for name, run in (("fleet round", fleet_round), ("per-model loop", per_model_loop)):
            start, start_cpu = time.perf_counter(), time.process_time()
            placed[name] = run()
            results[name].append((time.perf_counter() - start, time.process_time() - start_cpu))
    print(f"live round, {models} models x {len(nodes)} nodes, snapshot built from "
          f"{len(nodes)} Nodes and {len(pods)} Pods:")  # fmt: skip
    for name, runs in results.items():
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"  {name}: best {wall:.2f} s wall, {cpu:.2f} s CPU; {placed[name]}/{models} placed")
    fleet_wall = min(r[0] for r in results["fleet round"])
    loop_wall = min(r[0] for r in results["per-model loop"])
    print(f"  fleet round / per-model loop (wall): {fleet_wall / loop_wall:.2f}")
    print(f"  fleet round / target ({TIME_TARGET_S:.0f} s): {fleet_wall / TIME_TARGET_S:.2f}")


def _placed(plan: FleetPlan) -> tuple[int, Decimal]:
    placed = [p for p in plan.plans if p.feasible]
    return len(placed), sum((p.per_hour or Decimal(0) for p in placed), Decimal(0))


def gap(count: int, seed: int, size: int, nodes: int) -> None:
    """Exact vs heuristic on fleets of one priority level (so total cost is the objective)."""
    rng = random.Random(seed)
    tiers = fleets.tiers()
    gaps: list[float] = []
    fewer = unproven = 0
    solve_s: list[float] = []
    for f in range(count):
        models = [fleets.model(rng, f * 1000 + i, priorities=(0,)) for i in range(size)]
        snap = fleets.snapshot(rng, nodes, NOW, busy=0.7)
        start = time.perf_counter()
        exact = plan_fleet(models, tiers, NOW, snapshot=snap, solver="exact")
        solve_s.append(time.perf_counter() - start)
        greedy = plan_fleet(models, tiers, NOW, snapshot=snap, solver="heuristic")
        (e_n, e_cost), (g_n, g_cost) = _placed(exact), _placed(greedy)
        if exact.solver != "exact":
            unproven += 1
        elif g_n < e_n:
            fewer += 1
        elif e_cost > 0:
            gaps.append(float(g_cost / e_cost) - 1)
    print(f"heuristic vs exact on {count} fleets of {size} models x ~{nodes} nodes (70% busy):")
    if gaps:
        mean, worst = statistics.fmean(gaps), max(gaps)
        optimal = sum(g <= 1e-12 for g in gaps)
        print(f"  cost gap: mean {mean:.2%}, max {worst:.2%}; optimal in {optimal}/{len(gaps)}")
        print(f"  mean gap / target ({GAP_TARGET:.0%}): {mean / GAP_TARGET:.2f}")
        print(f"  max gap / target ({GAP_TARGET:.0%}): {worst / GAP_TARGET:.2f}")
    print(f"  heuristic placed fewer models: {fewer} fleets; exact not proven: {unproven}")
    print(f"  exact solve (whole plan_fleet): mean {statistics.fmean(solve_s):.2f} s, "
          f"max {max(solve_s):.2f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description="tierwise planner benchmark")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fleets", type=int, default=40)
    parser.add_argument("--fleet-size", type=int, default=12)
    parser.add_argument("--fleet-nodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--round-sizes", default="500,2000,5000", help="fleet sizes, a,b,c")
    parser.add_argument("--round-sample", type=int, default=200, help="models timed per size")
    args = parser.parse_args()
    timing(args.models, args.nodes, args.seed, args.repeats)
    live_round(args.models, args.nodes, args.seed, args.repeats)
    sizes = [int(n) for n in args.round_sizes.split(",")]
    round_timing(sizes, args.nodes, args.seed, args.round_sample)
    gap(args.fleets, args.seed, args.fleet_size, args.fleet_nodes)


if __name__ == "__main__":
    main()
