"""`tierwise report`: draw a profile's memory/accuracy/latency trade-off and Pareto frontier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .api import CandidateProfile, ModelProfile, TierKind

_TIER_MARKERS = {TierKind.GPU: "s", TierKind.CPU: "o", TierKind.OFFLOAD: "^"}


@dataclass(frozen=True)
class Point:
    """One measured candidate as the report plots it."""

    label: str
    tier: TierKind
    memory_bytes: int
    delta: float
    p99_ms: float


def points(profile: ModelProfile, batch: int | None = None) -> list[Point]:
    """Measured candidates, at `batch` (default: the smallest measured batch of each)."""
    out = []
    for cand in profile.candidates:
        if cand.error or cand.accuracy is None or not cand.latency:
            continue
        latency = _at_batch(cand, batch)
        if latency is None:
            continue
        label = f"{cand.precision}/{cand.tier}"
        if cand.variant != "primary":
            label = f"{cand.variant}:{label}"
        # Weight bytes show what a precision costs; the process's fixed overhead
        # (torch alone is ~220 MB) would hide the difference between precisions.
        out.append(Point(label, cand.tier, cand.weight_bytes, cand.accuracy.delta, latency))
    return out


def _at_batch(cand: CandidateProfile, batch: int | None) -> float | None:
    ordered = sorted(cand.latency, key=lambda p: p.batch)
    if batch is None:
        return ordered[0].p99_ms
    return next((p.p99_ms for p in ordered if p.batch == batch), None)


def pareto_front(pts: Sequence[Point]) -> list[Point]:
    """Candidates no other beats on memory, accuracy delta and latency at once."""

    def dominates(a: Point, b: Point) -> bool:
        no_worse = a.memory_bytes <= b.memory_bytes and a.delta <= b.delta and a.p99_ms <= b.p99_ms
        better = a.memory_bytes < b.memory_bytes or a.delta < b.delta or a.p99_ms < b.p99_ms
        return no_worse and better

    front = [p for p in pts if not any(dominates(q, p) for q in pts)]
    return sorted(front, key=lambda p: (p.memory_bytes, p.delta))


def render(
    profile: ModelProfile, out: Path, budget: float | None = None, batch: int | None = None
) -> Path:
    """Write a PNG: weight memory (x) against accuracy delta (y), colour = p99 latency."""
    # matplotlib is the optional `report` extra, loaded only when a report is drawn.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pts = points(profile, batch)
    if not pts:
        raise ValueError("the profile has no measured candidate to plot")
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    vmin, vmax = min(p.p99_ms for p in pts), max(p.p99_ms for p in pts)
    scatter = None
    for tier, marker in _TIER_MARKERS.items():
        group = [p for p in pts if p.tier is tier]
        if not group:
            continue
        scatter = ax.scatter(
            [p.memory_bytes / 2**20 for p in group],
            [p.delta * 100 for p in group],
            c=[p.p99_ms for p in group],
            cmap="viridis_r",
            vmin=vmin,
            vmax=vmax,
            marker=marker,
            s=90,
            edgecolors="black",
            linewidths=0.6,
            label=f"{tier}",
        )
        # Tiers of one precision share a point: their labels go to different sides.
        offset = {TierKind.GPU: (6, 10), TierKind.CPU: (6, 2), TierKind.OFFLOAD: (6, -8)}[tier]
        for p in group:
            ax.annotate(
                p.label,
                (p.memory_bytes / 2**20, p.delta * 100),
                fontsize=7,
                xytext=offset,
                textcoords="offset points",
            )
    front = pareto_front(pts)
    ax.plot(
        [p.memory_bytes / 2**20 for p in front],
        [p.delta * 100 for p in front],
        "--",
        color="crimson",
        linewidth=1.2,
        label="Pareto frontier",
    )
    if budget is not None:
        ax.axhline(budget * 100, color="darkorange", linewidth=1.5, label=f"budget {budget:.2%}")
    ax.set_xlabel("weight memory (MiB)")
    ax.set_xlim(left=0)
    ax.set_ylabel("accuracy delta vs fp32 (%)")
    where = f" on {profile.machine.cpu}" if profile.machine else ""
    ax.set_title(f"{profile.model.uri}: what each precision and tier costs{where}", fontsize=10)
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="p99 latency (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
