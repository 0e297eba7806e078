"""`tierwise plan`: plan InferenceModels from files, for people (table) and pipelines (JSON/YAML).

The seam for live metrics is :func:`plan_from_snapshot`: whatever produces a
`MetricsSnapshot` (a file today, the Prometheus collector later) hands it there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import yaml
from pydantic import ValidationError

from .api import Duration, InferenceModel, InvalidSpec, TierClass, format_validation_error
from .manifests import load_resources
from .planner import MetricsSnapshot, Plan, model_key
from .planner.cost import money_text
from .planner.input_checks import model_findings, snapshot_warnings
from .settings import Settings

if TYPE_CHECKING:
    from .planner.fleet import FleetPlan

EXIT_OK, EXIT_INVALID, EXIT_INFEASIBLE = 0, 2, 3
_R = TypeVar("_R", InferenceModel, TierClass)
SOLVERS = ("auto", "exact", "heuristic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", action="append", required=True,
        help="InferenceModels (and TierClasses): file or directory, repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--tiers", action="append", default=[], help="TierClasses: file or directory, repeatable"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--metrics", help="a MetricsSnapshot YAML (traffic, free capacity)")
    source.add_argument(
        "--prometheus",
        metavar="URL",
        help="read live traffic (and p99) from this Prometheus with the operator's default "
        "PromQL; node capacity is not known this way, so it is not checked",
    )
    parser.add_argument("--window", default="5m", help="rate window for --prometheus (e.g. 5m)")
    parser.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")
    parser.add_argument("--now", help="plan as of this RFC 3339 time (default: now)")
    parser.add_argument("--solver", choices=SOLVERS, default="auto", help="fleet solver")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        models, tiers = load_inputs(args.filename, args.tiers)
        snapshot = load_snapshot(Path(args.metrics)) if args.metrics else None
        now = parse_now(args.now)
        if args.prometheus:
            snapshot = snapshot_from_prometheus(args.prometheus, models, now, args.window)
        warnings = check_inputs(models, tiers, snapshot)
    except InvalidSpec as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return EXIT_INVALID
    for warning in warnings:
        print(f"warning: {warning}", file=err)
    fleet = plan_from_snapshot(models, tiers, snapshot, now, args.solver)
    render = {"table": render_table, "json": render_json, "yaml": render_yaml}[args.output]
    out.write(render(fleet))
    return EXIT_OK if all(p.feasible for p in fleet.plans) else EXIT_INFEASIBLE


def snapshot_from_prometheus(
    url: str, models: Sequence[InferenceModel], now: datetime, window: str = "5m"
) -> MetricsSnapshot:
    """Observed traffic of each model from Prometheus; an unreachable one is invalid input."""
    # Loaded only when asked for: prometheus-api-client pulls requests and dateparser.
    from .metrics.prometheus import PrometheusSource  # noqa: PLC0415
    from .metrics.snapshot import traffic_metrics  # noqa: PLC0415

    try:
        window = str(Duration.parse(window))
    except ValueError as exc:
        raise InvalidSpec([f"--window: {exc}"]) from exc
    source = PrometheusSource(url, Settings().promql, window=window)
    keys = [(m.metadata.namespace or "default", m.name) for m in models]
    observation = source.collect(keys, now)
    if observation.reason == "PrometheusUnreachable":
        raise InvalidSpec([f"--prometheus: {observation.message}"])
    return MetricsSnapshot(taken_at=now, models=traffic_metrics(observation))


def plan_from_snapshot(
    models: Sequence[InferenceModel],
    tiers: Sequence[TierClass],
    snapshot: MetricsSnapshot | None,
    now: datetime,
    solver: str = "auto",
) -> FleetPlan:
    """Plan every model against one snapshot (None: no metrics, capacity elastic)."""
    # Imported here: the exact solver loads scipy (~48 MB of RSS), and every `tierwise`
    # command, the operator's `tierwise run` included, builds this subcommand's parser.
    from .planner.fleet import plan_fleet  # noqa: PLC0415

    return plan_fleet(models, tiers, now, snapshot=snapshot, solver=solver)


def check_inputs(
    models: Sequence[InferenceModel], tiers: Sequence[TierClass], snapshot: MetricsSnapshot | None
) -> list[str]:
    """What the planner would ignore, one line each; InvalidSpec when a model names a
    TierClass that does not exist (the operator plans over the others and says so in a
    condition; here a typo should stop the pipeline)."""
    problems, warnings = [], []
    for model in models:
        name = f"InferenceModel {model_key(model)}"
        findings = model_findings(model, tiers)
        problems += [f"{name}: {p}" for p in findings.problems]
        warnings += [f"{name}: {w}" for w in findings.warnings]
    if problems:
        raise InvalidSpec(problems)
    return warnings + snapshot_warnings(snapshot, tiers)


def load_inputs(
    filenames: Iterable[str], tier_files: Iterable[str]
) -> tuple[list[InferenceModel], list[TierClass]]:
    """Models and TierClasses from all files; the same object given twice counts once."""
    models, tiers = load_resources(Path(f) for f in [*filenames, *tier_files])
    problems: list[str] = []
    models = _unique(
        models, lambda m: f"InferenceModel {m.metadata.namespace or 'default'}/{m.name}", problems
    )
    tiers = _unique(tiers, lambda t: f"TierClass {t.name}", problems)
    if not models:
        problems.append("InferenceModel: none found in the -f files")
    if not tiers:
        problems.append("TierClass: none found (give them with --tiers or in the -f files)")
    if problems:
        raise InvalidSpec(problems)
    return models, tiers


def _unique(items: list[_R], name: Callable[[_R], str], problems: list[str]) -> list[_R]:
    seen: dict[str, _R] = {}
    for item in items:
        key = name(item)
        if key in seen and seen[key] != item:
            problems.append(f"{key}: defined twice, differently")
        seen.setdefault(key, item)
    return list(seen.values())


def load_snapshot(path: Path) -> MetricsSnapshot:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidSpec([f"{path}: cannot read a snapshot: {exc}".splitlines()[0]]) from exc
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k not in ("apiVersion", "kind")}
    try:
        return MetricsSnapshot.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSpec([f"{path}: {p}" for p in format_validation_error(exc)]) from exc


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidSpec([f'--now: "{text}" is not an RFC 3339 time (2026-11-25T10:00:00Z)'])
    return moment


def plan_record(plan: Plan) -> dict[str, Any]:
    """One model's plan for machines: camelCase, money as decimal strings."""
    return {
        "model": plan.model,
        "feasible": plan.feasible,
        "change": plan.change.value,
        "variant": plan.variant,
        "precision": None if plan.precision is None else str(plan.precision),
        "tier": None if plan.tier is None else str(plan.tier),
        "tierClass": plan.tier_class,
        "replicas": plan.replicas,
        "gpu": plan.needs_gpu,
        "memoryRequestBytes": plan.memory_request_bytes,
        "hostMemoryRequestBytes": plan.host_memory_request_bytes,
        "cpuRequest": plan.cpu_request,
        "maxBatch": plan.max_batch,
        "costPerHour": _money(plan.per_hour),
        "costPer1kInferences": _money(plan.per_1k),
        "baselinePer1kInferences": _money(plan.baseline_per_1k),
        "estimated": plan.estimated,
        "reason": plan.reason,
        "rejected": [r.to_wire() for r in plan.rejected],
    }


def _money(value: Any) -> str | None:
    return None if value is None else money_text(value)


def fleet_record(fleet: FleetPlan) -> dict[str, Any]:
    return {
        "solver": fleet.solver,
        "solverReason": fleet.solver_reason,
        "costPerHour": money_text(fleet.per_hour),
        "plans": [plan_record(p) for p in fleet.plans],
    }


def render_json(fleet: FleetPlan) -> str:
    return json.dumps(fleet_record(fleet), indent=2) + "\n"


def render_yaml(fleet: FleetPlan) -> str:
    return yaml.safe_dump(fleet_record(fleet), sort_keys=False, width=1000)


_COLUMNS = ("MODEL", "VARIANT", "PRECISION", "TIER CLASS", "REPLICAS", "COST/H", "COST/1K",
            "FP16-GPU/1K", "PLAN")  # fmt: skip


def render_table(fleet: FleetPlan) -> str:
    rows = [_COLUMNS] + [_row(p) for p in fleet.plans]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for plan in fleet.plans:
        lines += ["", f"{plan.model}: {plan.reason}"]
        width = max((len(r.candidate) for r in plan.rejected), default=0)
        lines += [f"  {r.candidate.ljust(width)}  {r.why}" for r in plan.rejected]
    lines += ["", f"solver: {fleet.solver} ({fleet.solver_reason})"]
    return "\n".join(lines) + "\n"


def _row(plan: Plan) -> tuple[str, ...]:
    state = plan.change.value + (" (estimated)" if plan.estimated else "")
    return (
        plan.model, plan.variant or "-", str(plan.precision or "-"), plan.tier_class or "-",
        str(plan.replicas), money_text(plan.per_hour), money_text(plan.per_1k),
        money_text(plan.baseline_per_1k), state,
    )  # fmt: skip
