"""Per-model decisions: the cheapest feasible candidate, with every alternative explained."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tierwise_operator.api import InferenceModel, InferenceModelStatus, TierClass
from tierwise_operator.planner import ChangeKind, CurrentPlan, MetricsSnapshot, decide
from tierwise_operator.planner.candidates import CandidateKey
from tierwise_operator.planner.snapshot import FailedKey

from .conftest import EMBEDDER, NOW, entry, later, model, point, profile, tier


def why(plan_rejected: tuple, candidate: str) -> str:
    return next(r.why for r in plan_rejected if r.candidate == candidate)


def test_the_cheapest_feasible_candidate_wins_and_every_other_says_why(
    three_tiers: list[TierClass],
) -> None:
    plan = decide(model(rps=40, slo="50ms", **EMBEDDER), three_tiers, NOW)
    assert (plan.change, str(plan.chosen.key) if plan.chosen else None) == (
        ChangeKind.INITIAL,
        "int8/cpu",
    )
    assert why(plan.rejected, "int4/cpu") == "accuracy delta 2.9% > budget 2%"
    assert why(plan.rejected, "fp16/cpu") == "p99 at batch 1 on an idle replica is 60ms > SLO 50ms"
    assert why(plan.rejected, "fp16/gpu").startswith("cost ")
    assert len(plan.rejected) == 4 * 3 - 1
    assert plan.reason.startswith("int8 on cpu: 1 replica(s) meet p99 50ms (predicted ")


def test_too_much_traffic_for_the_replica_limit_is_explained(three_tiers: list[TierClass]) -> None:
    plan = decide(model(rps=3000, **EMBEDDER, replicas=(1, 4)), three_tiers, NOW)
    assert plan.tier_class == "gpu"
    assert why(plan.rejected, "int8/cpu").startswith("needs 12 replicas for 3000 req/s")
    assert why(plan.rejected, "int8/cpu").endswith("> max 4")


def test_ties_in_cost_go_to_the_candidate_with_more_headroom() -> None:
    tiers = [tier("cpu", price="1.00", per_gib="0", cpu=16)]
    prof = profile(
        entry("fp16", "cpu", 0.2, 0.0, [point(1, 10, 100)]),
        entry("int8", "cpu", 0.1, 0.0, [point(1, 10, 200)]),
    )
    plan = decide(model(rps=30, precisions=["fp16", "int8"], prof=prof), tiers, NOW)
    assert str(plan.chosen.key if plan.chosen else "") == "int8/cpu"
    assert why(plan.rejected, "fp16/cpu").startswith("same cost")


def test_a_snapshot_without_free_devices_rules_out_the_gpu_tier(
    three_tiers: list[TierClass],
) -> None:
    snapshot = MetricsSnapshot.model_validate(
        {"takenAt": NOW.isoformat(), "nodes": [
            {"name": "g1", "tierClass": "gpu", "freeMemory": "900Gi",
             "devices": [{"free": "512Mi"}] + [{"free": "80Gi", "allocated": True}] * 7},
            {"name": "c1", "tierClass": "cpu", "freeMemory": "60Gi", "freeCpu": 16}]},
    )  # fmt: skip
    plan = decide(model(rps=6000, **EMBEDDER, replicas=(1, 64)), three_tiers, NOW,
                  snapshot=snapshot)  # fmt: skip
    assert "the largest free device of gpu has 0.5 GiB" in why(plan.rejected, "fp16/gpu")
    assert "only 4 fit the free cores of cpu" in why(plan.rejected, "int8/cpu")  # not memory
    assert not plan.feasible
    assert "closest:" in plan.reason


def test_nothing_feasible_names_the_closest_candidate_and_keeps_the_current_plan(
    three_tiers: list[TierClass],
) -> None:
    m = model(rps=10, slo="1ms", **EMBEDDER)
    plan = decide(m, three_tiers, NOW)
    assert (plan.change, plan.chosen, plan.replicas) == (ChangeKind.INFEASIBLE, None, 0)
    assert plan.reason.startswith("no feasible plan; closest: ")
    current = CurrentPlan(CandidateKey("primary", "int8", "cpu"), replicas=3)  # type: ignore[arg-type]
    kept = decide(m, three_tiers, NOW, current=current)
    assert kept.change is ChangeKind.INFEASIBLE and not kept.changed
    assert (str(kept.chosen.key) if kept.chosen else "", kept.replicas) == ("int8/cpu", 3)
    assert "keeps serving int8/cpu with 3 replica(s)" in kept.reason
    nothing = InferenceModelStatus.model_validate(plan.status_fields())
    assert nothing.decision is not None and nothing.decision.change == "infeasible"
    assert nothing.replicas is None  # nothing runs: the operator creates no Deployment
    serving = InferenceModelStatus.model_validate(kept.status_fields())
    assert (serving.precision, serving.tier_class, serving.replicas) == ("int8", "cpu", 3)


def test_a_failed_candidate_is_excluded_until_its_retry_time(three_tiers: list[TierClass]) -> None:
    key = CandidateKey.parse("int8/cpu")
    failed = (FailedKey(key, "OOMKilled", later(30)),)
    m = model(rps=40, slo="50ms", **EMBEDDER)
    during = decide(m, three_tiers, NOW, current=CurrentPlan(failed=failed))
    assert during.chosen is not None and during.chosen.key != key
    assert why(during.rejected, "int8/cpu") == "OOMKilled; excluded until 2026-11-25T10:30:00+00:00"
    after = decide(m, three_tiers, later(31), current=CurrentPlan(failed=failed))
    assert after.chosen is not None and after.chosen.key == key


def test_without_a_profile_the_decision_is_marked_estimated(three_tiers: list[TierClass]) -> None:
    plan = decide(model(rps=5, slo="1s"), three_tiers, NOW)
    assert plan.estimated and plan.decision().estimated
    assert "(estimated: " in plan.reason
    measured = decide(model(rps=5, slo="1s", **EMBEDDER), three_tiers, NOW)
    assert not measured.estimated


def test_the_status_fields_validate_and_read_back_as_the_current_plan(
    three_tiers: list[TierClass],
) -> None:
    m = model(rps=40, slo="50ms", **EMBEDDER)
    plan = decide(m, three_tiers, NOW)
    fields = plan.status_fields()
    status = InferenceModelStatus.model_validate(fields)
    assert status.decision is not None and status.decision.change == "initial"
    assert status.cost is not None and status.cost.baseline_per1k_inferences is not None
    assert status.cost.per1k_inferences < status.cost.baseline_per1k_inferences
    assert status.memory is not None and status.memory.request_bytes == plan.memory_request_bytes
    m_with_status = InferenceModel.model_validate({**m.to_wire(), "status": fields})
    current = CurrentPlan.from_model(m_with_status)
    assert (current.key, current.replicas) == (plan.chosen.key if plan.chosen else None, 1)
    assert current.tier_changed_at == NOW
    again = decide(m_with_status, three_tiers, later(1))
    assert again.change is ChangeKind.KEPT and not again.changed


def test_the_plan_says_what_the_deployment_needs(three_tiers: list[TierClass]) -> None:
    gpu = decide(model(rps=6000, **EMBEDDER, replicas=(1, 64)), three_tiers, NOW)
    assert gpu.tier_class == "gpu" and gpu.needs_gpu
    assert gpu.host_memory_request_bytes is not None and gpu.memory_request_bytes is not None
    cpu = decide(model(rps=40, **EMBEDDER), three_tiers, NOW)
    assert not cpu.needs_gpu and cpu.cpu_request == 4
    assert cpu.host_memory_request_bytes == cpu.memory_request_bytes


@pytest.mark.parametrize(
    ("rps", "tier_class", "replicas"),
    [(0.05, "cpu", 1), (400, "cpu", 2), (2000, "cpu", 8), (12000, "gpu", 2)],
)
def test_traffic_temperature_moves_a_small_model_between_tiers_by_cost(
    rps: float, tier_class: str, replicas: int, three_tiers: list[TierClass]
) -> None:
    """Cold and warm traffic stay on CPU (cold at the minimum replica count); hot traffic
    is cheaper per inference on one shared GPU. Nothing here names a tier by temperature."""
    plan = decide(model(rps=rps, **EMBEDDER, replicas=(1, 64)), three_tiers, NOW)
    assert (plan.tier_class, plan.replicas) == (tier_class, replicas)


@pytest.mark.parametrize(
    ("rps", "tier_class"), [(0.0003, "nvme-offload"), (0.01, "cpu-large"), (0.5, "gpu-h100")]
)
def test_traffic_temperature_sends_a_cold_large_model_to_nvme_offload(
    rps: float, tier_class: str, sample_tiers: list[TierClass]
) -> None:
    """A 13B decoder for overnight summaries (p99 within the hour), at the sample prices: a
    few requests an hour are cheapest memory-mapped from NVMe, a steady trickle on CPU nodes,
    real traffic on a GPU. Estimated figures only."""
    m = model(task="text-generation", parameters=13 * 10**9, budget="0.5%", slo="1h", rps=rps,
              precisions=["bf16", "fp16", "int8"], replicas=(1, 64))  # fmt: skip
    assert decide(m, sample_tiers, NOW).tier_class == tier_class


def test_scale_to_zero_when_allowed_and_there_is_no_traffic(three_tiers: list[TierClass]) -> None:
    plan = decide(model(rps=None, **EMBEDDER, replicas=(0, 4)), three_tiers, NOW)
    assert plan.replicas == 0 and plan.per_hour == 0


def test_observed_traffic_above_the_spec_floor_is_planned_for(three_tiers: list[TierClass]) -> None:
    snapshot = MetricsSnapshot.model_validate({"takenAt": NOW.isoformat(), "models": [
        {"namespace": "default", "name": "m", "requestRate": 900,
         "observedAt": (NOW - timedelta(seconds=30)).isoformat()}]})  # fmt: skip
    plan = decide(model(rps=40, **EMBEDDER), three_tiers, NOW, snapshot=snapshot)
    assert plan.traffic_rps == 900 and plan.replicas == 4


def test_calibrated_int4_is_chosen_within_a_budget_its_round_to_nearest_codes_exceed() -> None:
    points = [point(1, 12, 100), point(8, 40, 250)]
    int4 = entry("int4", "cpu", 0.06, 0.017, points, peak_gib=0.3)
    int4["calibration"] = {"method": "gptq", "rtnAccuracy": {"delta": 0.04}}
    prof = profile(entry("int8", "cpu", 0.1, 0.004, points, peak_gib=0.6), int4)
    m = model(prof=prof, precisions=["int8", "int4"], budget="2%")
    plan = decide(m, [tier("cpu", per_gib="0.5")], NOW)
    assert plan.chosen is not None and str(plan.chosen.key) == "int4/cpu"
