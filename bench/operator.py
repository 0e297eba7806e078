"""Operator benchmark: time from create to Deployment for 500 InferenceModels, and the
operator's RSS while it watches them. One command; prints figures and per-model ratios.

    PYTHONPATH=operator:runtime python bench/operator.py            # 500 models
    PYTHONPATH=operator:runtime python bench/operator.py --quick    # 50 models, replan 5 s

The API emulator (tierwise_operator.emulator) runs in this process on 127.0.0.1 with the
CRDs, the sample TierClasses, nodes matching them and a fake kubelet; the operator runs as
its own process (`tierwise run`) with a kubeconfig pointing at the emulator. Exit status 1
when some model got no Deployment before the deadline.

(Run only as a script: the core is in operator_load.py, as a module named `operator`
would shadow the standard library's.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from operator_load import Figures, LoadConfig, run_load

MIB = 2**20
REPO = Path(__file__).resolve().parent.parent


def memory_limit() -> int:
    """The operator Deployment's memory limit, read from deploy/base/deployment.yaml."""
    import yaml

    from tierwise_operator.api import Memory

    doc = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())
    limits = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    return int(Memory.parse(limits["memory"]))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    marks = [f"p{q} {percentile(values, q) * 1000:.0f}" for q in (50, 95, 99)]
    return f"{', '.join(marks)}, max {values[-1] * 1000:.0f} ms"


def _mib(value: float) -> str:
    return f"{value / MIB:.1f} MiB"


def latency_rows(f: Figures) -> list[tuple[str, str]]:
    burst = f.models - len(f.probe_latencies)
    rate = burst / f.create_s if f.create_s else 0.0
    done = f"MISSING {len(f.missing)} of {f.models}"
    if f.all_deployed_s is not None:
        done = f"{f.all_deployed_s:.2f} s ({burst / f.all_deployed_s:.1f} models/s)"
    return [
        ("operator start -> watching (/healthz 200)", f"{f.startup_s:.1f} s"),
        (
            f"create -> Deployment, one at a time ({len(f.probe_latencies)} models)",
            spread(f.probe_latencies),
        ),
        (f"burst: {burst} creates back to back", f"{f.create_s:.2f} s ({rate:.0f}/s)"),
        ("burst: create -> Deployment", spread(f.deploy_latencies)),
        ("burst: create -> status written", spread(f.status_latencies)),
        ("burst: create -> Ready (a replica ready)", spread(f.ready_latencies)),
        ("burst: first create -> all Deployments", done),
    ]


def memory_rows(f: Figures) -> list[tuple[str, str]]:
    n, marks = f.models, f.marks
    idle = marks["idle"].rss
    rows = [("RSS idle, watching, before creates", _mib(idle))]
    for name, label in (("reconciled", "every status written"), ("settled", "all Ready"),
                        ("end", "after the steady window")):  # fmt: skip
        if name in marks:
            grown = (marks[name].rss - idle) / n / 1024
            rows.append((f"RSS {label}", f"{_mib(marks[name].rss)} (+{grown:.0f} KiB/model)"))
    peak = f.rss_hwm or f.rss_peak_sampled
    per_model = (peak - idle) / n
    hwm = _mib(f.rss_hwm) if f.rss_hwm else "n/a"
    rows.append(("RSS peak: sampled / kernel VmHWM", f"{_mib(f.rss_peak_sampled)} / {hwm}"))
    if per_model > 0:
        limit = memory_limit()
        fit = (limit - idle) / per_model
        rows.append((f"models under the {_mib(limit)} limit at this peak/model", f"~{fit:.0f}"))
    return rows


def _cpu(f: Figures, start: str, end: str) -> tuple[float, float, float]:
    a, b = f.marks[start], f.marks[end]
    return b.cpu_s - a.cpu_s, b.bench_cpu_s - a.bench_cpu_s, b.at - a.at


def cpu_rows(f: Figures) -> list[tuple[str, str]]:
    n, rows = f.models, []
    op, bench, wall = _cpu(f, "idle", "reconciled")
    rows.append(("operator CPU, first create -> all reconciled",
                 f"{op:.2f} s in {wall:.1f} s ({op / n * 1000:.1f} ms/model)"))  # fmt: skip
    rows.append(("  benchmark process (emulator) CPU, same span", f"{bench:.2f} s"))
    if "end" in f.marks:
        op, bench, wall = _cpu(f, "settled", "end")
        timers = f.window_reconciles.get("timer", 0)
        per = f"{op / timers * 1000:.1f} ms per timer reconcile" if timers else "no timer ran"
        rows.append(("operator CPU, steady window", f"{op:.2f} s in {wall:.1f} s "
                     f"({op / wall:.2f} cores; {per})"))  # fmt: skip
        rows.append(("  benchmark process (emulator) CPU, same span", f"{bench:.2f} s"))
        if op > 0:
            # One Python process re-plans on one core at most (the GIL); linear in models.
            rows.append(("models one core could keep re-planning at this interval",
                         f"~{n * wall / op:.0f}"))  # fmt: skip
        counts = ", ".join(f"{k} {v}" for k, v in sorted(f.window_reconciles.items()) if v)
        rows.append(("reconciles in the steady window", counts or "none"))
    for trigger in sorted(f.reconciles.count):
        count = f.reconciles.count[trigger]
        mean = f.reconciles.seconds.get(trigger, 0.0) / count * 1000 if count else 0.0
        rows.append((f"reconciles ({trigger}), whole run",
                     f"{count} ({count / n:.2f}/model), mean wall {mean:.0f} ms"))  # fmt: skip
    writes = ", ".join(f"{k} {v / n:.1f}" for k, v in sorted(f.writes.items()))
    rows.append(("writes stored per model, whole run", writes))
    if "end" in f.marks:
        rows.append(("API requests in the steady window", steady_requests(f)))
    return rows


def steady_requests(f: Figures) -> str:
    """What the operator asked of the API server while every plan held, per timer re-plan
    (the benchmark's own client is idle then; watches are long-lived GETs)."""
    before, after = f.marks["settled"].requests, f.marks["end"].requests
    sent = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    timers = f.window_reconciles.get("timer", 0)
    if not sent:
        return "none"
    per = f" ({sum(sent.values()) / timers:.2f} per timer re-plan)" if timers else ""
    return ", ".join(f"{k} {v}" for k, v in sorted(sent.items())) + per


def report(f: Figures) -> None:
    c = f.config
    print(f"operator benchmark: {f.models} InferenceModels, {f.nodes} emulated nodes, "
          f"re-plan every {c.replan_s:g} s")  # fmt: skip
    print(f"operator: {f.command}")
    rows = latency_rows(f) + memory_rows(f) + cpu_rows(f)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if f.missing:
        more = " ..." if len(f.missing) > 10 else ""
        print(f"no Deployment before the deadline: {', '.join(f.missing[:10])}{more}")


def main() -> int:
    parser = argparse.ArgumentParser(description="tierwise operator benchmark")
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="50 models, re-plan every 5 s")
    parser.add_argument(
        "--probe",
        type=int,
        default=20,
        help="of the models, how many to create one at a time first",
    )
    parser.add_argument("--replan", type=float, default=30.0, help="re-plan interval (s)")
    parser.add_argument(
        "--window",
        type=float,
        default=60.0,
        help="steady window after all are Ready, at least two re-plan intervals (s)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=300.0,
        help="from the first create: a model without a Deployment by then fails",
    )
    parser.add_argument("--pods-per-node", type=int, default=100)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--log", type=Path, help="keep the operator's log here")
    args = parser.parse_args()
    config = LoadConfig(
        models=50 if args.quick else args.models,
        probe=min(args.probe, 10) if args.quick else args.probe,
        replan_s=5.0 if args.quick else args.replan,
        window_s=10.0 if args.quick else args.window,
        deadline_s=args.deadline,
        pods_per_node=args.pods_per_node,
        log_level=args.log_level,
        log=args.log,
    )
    figures = asyncio.run(run_load(config))
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=1, default=str))
    return 1 if figures.missing or figures.all_deployed_s is None else 0


if __name__ == "__main__":
    sys.exit(main())
