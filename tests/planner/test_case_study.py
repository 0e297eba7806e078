"""The published support-ticket case study, planned hour by hour from its own inputs: our GPU
instance-hours and cost per ticket next to the 50% and 35% savings the study reports.

Run with `pytest -s` to see the table. The assumptions behind every input are written in
deploy/scenarios/support-tickets/; change them there and this test re-derives the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml

from tierwise_operator.api import InferenceModel, Precision, ReplicaRange, TierClass, TierKind
from tierwise_operator.manifests import load_resources
from tierwise_operator.planner import CurrentPlan, MetricsSnapshot
from tierwise_operator.planner.fleet import plan_fleet

from ..conftest import REPO

SCENARIO = REPO / "deploy" / "scenarios" / "support-tickets"
STUDY_GPU_HOURS_SAVING = Decimal("0.50")
STUDY_COST_SAVING = Decimal("0.35")
START = datetime(2026, 11, 25, 0, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Day:
    """One day of the service, planned every hour as the operator's timer would."""

    gpu_instance_hours: int
    cost: Decimal
    tickets: Decimal
    plans: list[str]
    infeasible_hours: int

    @property
    def per_ticket(self) -> Decimal:
        return self.cost / self.tickets


def _traffic() -> dict[str, Any]:
    docs = yaml.safe_load_all((SCENARIO / "traffic.yaml").read_text())
    return next(d for d in docs if d.get("kind") == "TrafficProfile")


def plan_day(models: list[InferenceModel], tiers: list[TierClass], split: dict[str, float]) -> Day:
    traffic = _traffic()
    daily = traffic["ticketsPerMonth"] / traffic["daysPerMonth"]
    currents: dict[str, CurrentPlan] = {}
    gpu_hours, cost, seen, infeasible = 0, Decimal(0), [], 0
    for hour, share in enumerate(traffic["hourlyShares"]):
        now = START + timedelta(hours=hour)
        rps = daily * share / 100 / 3600
        snapshot = MetricsSnapshot.model_validate({"takenAt": now.isoformat(), "models": [
            {"namespace": "support", "name": m.name, "requestRate": rps * split[m.name],
             "observedAt": now.isoformat()} for m in models]})  # fmt: skip
        fleet = plan_fleet(models, tiers, now, snapshot=snapshot, currents=currents)
        for plan in fleet.plans:
            assert plan.chosen is not None, plan.reason
            infeasible += not plan.feasible
            currents[plan.model] = CurrentPlan(
                plan.chosen.key, plan.replicas, plan.tier_changed_at, plan.scaled_at,
                plan.recommendations,
            )  # fmt: skip
            gpu_hours += plan.replicas if plan.tier is TierKind.GPU else 0
            cost += plan.per_hour or Decimal(0)
            seen.append(f"{plan.model.split('/')[1]}: {plan.chosen.key}")
    plans = sorted(set(seen))
    return Day(gpu_hours, cost, Decimal(str(daily)), plans, infeasible)


def study_tier_choices(models: list[InferenceModel]) -> list[InferenceModel]:
    """The study's own plan on the same inputs: standard on 4-bit 16 GB GPUs (the student
    wins there), the critical 30% on the 4-bit teacher from NVMe offload."""
    choices = {
        "ticket-summary-standard": (["gpu-16g"], ReplicaRange(min=1, max=64)),
        "ticket-summary-critical": (["nvme-offload"], ReplicaRange(min=1, max=10_000)),
    }
    out = []
    for m in models:
        tiers, replicas = choices[m.name]
        spec = m.spec.model_copy(
            update={"tier_classes": tiers, "precisions": [Precision.INT4], "replicas": replicas}
        )
        out.append(m.model_copy(update={"spec": spec}))
    return out


@pytest.fixture(scope="module")
def days() -> dict[str, Day]:
    models, tiers = load_resources([SCENARIO])
    baseline, _ = load_resources([SCENARIO / "baseline"])
    split = _traffic()["split"]
    result = {
        "baseline (teacher fp16, 48 GB GPU)": plan_day(baseline, tiers, {baseline[0].name: 1.0}),
        "tierwise": plan_day(models, tiers, split),
        "the study's tiers, same inputs": plan_day(study_tier_choices(models), tiers, split),
    }
    _print(result)
    return result


def _print(days: dict[str, Day]) -> None:
    base = days["baseline (teacher fp16, 48 GB GPU)"]
    header = f"{'':36}{'GPU inst-h':>11}{'vs base':>9}{'cost/ticket':>13}{'vs base':>9}"
    lines = ["", "support-ticket case study, one day (100,000 tickets) planned hourly:", header]
    for name, day in days.items():
        gpu = day.gpu_instance_hours / base.gpu_instance_hours - 1
        cost = day.per_ticket / base.per_ticket - 1
        lines.append(f"{name:36}{day.gpu_instance_hours:>11}{gpu:>+9.0%}"
                     f"{day.per_ticket:>13.5f}{cost:>+9.1%}")  # fmt: skip
    lines.append(f"{'the study reports':36}{'':>11}{-STUDY_GPU_HOURS_SAVING:>+9.0%}"
                 f"{'':>13}{-STUDY_COST_SAVING:>+9.1%}")  # fmt: skip
    for name, day in days.items():
        lines.append(f"  {name}: {'; '.join(day.plans)}; infeasible hours {day.infeasible_hours}")
    print("\n".join(lines))


def saving(days: dict[str, Day], name: str) -> tuple[Decimal, Decimal]:
    base, day = days["baseline (teacher fp16, 48 GB GPU)"], days[name]
    gpu = 1 - Decimal(day.gpu_instance_hours) / Decimal(base.gpu_instance_hours)
    return gpu, 1 - day.per_ticket / base.per_ticket


def test_every_hour_has_a_feasible_plan_before_and_after(days: dict[str, Day]) -> None:
    assert days["baseline (teacher fp16, 48 GB GPU)"].infeasible_hours == 0
    assert days["tierwise"].infeasible_hours == 0


def test_cost_per_ticket_falls_at_least_as_much_as_the_study_reports(days: dict[str, Day]) -> None:
    _, cost = saving(days, "tierwise")
    assert cost >= STUDY_COST_SAVING


def test_tierwise_costs_no_more_than_the_studys_own_tier_choices(days: dict[str, Day]) -> None:
    assert days["tierwise"].cost <= days["the study's tiers, same inputs"].cost


def test_the_gpu_hours_claim_is_not_reproduced_from_the_studys_inputs(
    days: dict[str, Day],
) -> None:
    """A finding, pinned: the study's 50% fewer GPU instance-hours does not follow from its
    own inputs. At its throughput figures the 30% that needs the teacher is cheapest on GPUs
    (fp16 on the 48 GB GPU by day, 4-bit on two 16 GB GPUs at night), so GPU hours rise while
    cost per ticket falls by more than the study's 35%; serving that 30% from NVMe offload, as
    the study did, needs more offload nodes than the GPU hours it saves are worth (the third
    row of the printed table). If new inputs reproduce the claim, this fails: update
    docs/planner.md and turn it into an assertion of the claim."""
    gpu, cost = saving(days, "tierwise")
    assert gpu < STUDY_GPU_HOURS_SAVING
    assert cost >= STUDY_COST_SAVING
