"""A reconcile turns an InferenceModel and what the cluster shows into children, status, Events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.api.profile_codec import encode
from tierwise_operator.conditions import find
from tierwise_operator.kube import PDBS
from tierwise_operator.planner import DEFAULT_SETTINGS
from tierwise_operator.reconcile import Actions, World, reconcile
from tierwise_operator.settings import Settings
from tierwise_operator.unchanged import digest, merge_patch_changes

from .profiles import embedder_profile

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = Settings()


def _body(model: InferenceModel, status: dict[str, Any] | None = None) -> dict[str, Any]:
    body = model.to_wire()
    body["status"] = status or {}
    return body


def _run(
    body: dict[str, Any], tiers: dict[str, TierClass], now: datetime = NOW, **world: Any
) -> Actions:
    return reconcile(
        body, World(tiers=list(tiers.values()), **world), now, SETTINGS, DEFAULT_SETTINGS
    )


def _condition(actions: Actions, type_: str) -> dict[str, Any]:
    return next(c for c in actions.status["conditions"] if c["type"] == type_)


def _args(actions: Actions) -> list[str]:
    deployment = next(m for m in actions.apply if m["kind"] == "Deployment")
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_invalid_spec_sets_invalidspec_condition_and_touches_no_child(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    body = _body(embedder)
    body["spec"]["slo"]["latencyP99"] = "fast"
    actions = _run(body, sample_tiers)
    ready = _condition(actions, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert 'spec.slo.latencyP99: "fast" is not a duration' in ready["message"]
    assert actions.apply == [] and actions.create == [] and actions.delete == []
    assert [(e.type, e.reason) for e in actions.events] == [("Warning", "InvalidSpec")]
    # The same invalid spec again: the condition holds, no second Event.
    again = _run({**body, "status": actions.status}, sample_tiers)
    assert again.events == []


def test_inline_profile_plans_and_renders_the_deployment(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    embedder.spec.profile = embedder_profile()
    actions = _run(_body(embedder), sample_tiers)
    assert actions.create == []  # no profile Job for an inline profile
    assert actions.status["precision"] == "int8" and actions.status["tierClass"] == "cpu-large"
    args = _args(actions)
    assert args[args.index("--precision") + 1] == "int8"
    assert {m["kind"] for m in actions.apply} == {"Deployment", "Service"}
    assert _condition(actions, "Profiled")["reason"] == "ProfileGiven"
    assert _condition(actions, "Ready")["reason"] == "Deploying"
    assert _condition(actions, "AccuracyWithinBudget")["status"] == "True"
    assert actions.status["observedGeneration"] == 1
    assert [e.reason for e in actions.events] == ["Planned"]
    assert "int8 on cpu-large" in actions.events[0].message


def test_without_a_profile_jobs_are_launched_and_the_model_serves_on_estimates(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    actions = _run(_body(embedder), sample_tiers)
    devices = sorted(j["metadata"]["labels"]["tierwise.dev/profile-device"] for j in actions.create)
    assert devices == ["cpu", "cuda"]
    profiled = _condition(actions, "Profiled")
    assert (profiled["status"], profiled["reason"]) == ("False", "Profiling")
    assert actions.status["decision"]["estimated"] is True
    assert any(m["kind"] == "Deployment" for m in actions.apply)


def _finished_jobs(actions: Actions) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    jobs, pods = [], []
    for i, created in enumerate(actions.create):
        meta = {**created["metadata"], "uid": f"job-{i}"}
        jobs.append({**created, "metadata": meta, "status": {"succeeded": 1}})
        terminated = {"exitCode": 0, "message": encode(embedder_profile())}
        pods.append({
            "metadata": {"ownerReferences": [{"uid": f"job-{i}"}]},
            "status": {"containerStatuses": [{"state": {"terminated": terminated}}]},
        })  # fmt: skip
    return jobs, pods


def test_finished_jobs_yield_the_measured_profile(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    first = _run(_body(embedder), sample_tiers)
    jobs, pods = _finished_jobs(first)
    later = _run(_body(embedder, first.status), sample_tiers, NOW + timedelta(minutes=5),
                 jobs=jobs, pods=pods)  # fmt: skip
    assert later.create == []
    assert later.status["profileKey"] and later.status["profile"]["candidates"]
    assert _condition(later, "Profiled")["reason"] == "ProfileMeasured"
    assert later.status["decision"]["estimated"] is False
    assert "ProfileMeasured" in [e.reason for e in later.events]
    # The profile is kept: the next reconcile launches nothing and measures nothing again.
    settled = _run(_body(embedder, later.status), sample_tiers, NOW + timedelta(minutes=6))
    assert settled.create == [] and "profile" not in settled.status


def test_a_failed_profile_job_is_reported_with_its_reason(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    first = _run(_body(embedder), sample_tiers)
    jobs = [
        {**j, "metadata": {**j["metadata"], "uid": "u"}, "status": {"failed": 1}}
        for j in first.create
    ]
    pods = [{"metadata": {"ownerReferences": [{"uid": "u"}]}, "status": {"containerStatuses": [
        {"state": {"terminated": {"message": "model not found: pvc://models/x"}}}]}}]  # fmt: skip
    later = _run(_body(embedder, first.status), sample_tiers, jobs=jobs, pods=pods)
    profiled = _condition(later, "Profiled")
    assert profiled["reason"] == "ProfileFailed" and "model not found" in profiled["message"]
    assert ("Warning", "ProfileFailed") in [(e.type, e.reason) for e in later.events]


def _oom_pod(candidate: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app.kubernetes.io/component": "serving"},
                     "annotations": {"tierwise.dev/candidate": candidate}},
        "status": {"containerStatuses": [{"restartCount": 3, "state": {"running": {}},
                                          "lastState": {"terminated": {"reason": "OOMKilled"}}}]},
    }  # fmt: skip


def test_an_oomkilled_candidate_is_excluded_and_reported(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    embedder.spec.profile = embedder_profile()
    first = _run(_body(embedder), sample_tiers)
    assert first.status["precision"] == "int8"
    later = _run(_body(embedder, first.status), sample_tiers, NOW + timedelta(minutes=1),
                 pods=[_oom_pod("int8/cpu-large")])  # fmt: skip
    failed = later.status["failedCandidates"]
    assert [f["candidate"] for f in failed] == ["int8/cpu-large"]
    assert "OOMKilled" in failed[0]["reason"]
    assert later.status["precision"] != "int8" or later.status["tierClass"] != "cpu-large"
    assert _condition(later, "Degraded")["reason"] == "CandidateFailed"
    assert ("Warning", "CandidateFailed") in [(e.type, e.reason) for e in later.events]
    # After the back-off the candidate may be chosen again.
    expired = _run(_body(embedder, later.status), sample_tiers, NOW + timedelta(hours=2))
    assert expired.status["failedCandidates"] == []


def test_scaling_to_one_replica_removes_the_pdb(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    embedder.spec.profile = embedder_profile()
    actions = _run(_body(embedder), sample_tiers, pdb_exists=True)
    assert actions.status["replicas"] == 1
    assert actions.delete == [(PDBS, "ticket-embedder")]


@pytest.mark.parametrize(
    ("ready", "reason", "status"), [(0, "Deploying", "False"), (1, "Serving", "True")]
)
def test_ready_follows_the_deployment(
    embedder: InferenceModel,
    sample_tiers: dict[str, TierClass],
    ready: int,
    reason: str,
    status: str,
) -> None:
    embedder.spec.profile = embedder_profile()
    deployment = {"metadata": {"generation": 1}, "spec": {"replicas": 1},
                  "status": {"observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": 1,
                             "replicas": 1}}  # fmt: skip
    actions = _run(_body(embedder), sample_tiers, deployment=deployment)
    cond = _condition(actions, "Ready")
    assert (cond["status"], cond["reason"]) == (status, reason)
    assert actions.status["readyReplicas"] == ready


def test_a_plan_that_holds_posts_no_event(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    embedder.spec.profile = embedder_profile()
    first = _run(_body(embedder), sample_tiers)
    second = _run(_body(embedder, first.status), sample_tiers, NOW + timedelta(seconds=30))
    assert second.plan is not None and second.plan.change.value == "kept"
    assert second.events == []
    assert find([], "Ready") is None


def test_a_plan_that_holds_leaves_status_and_children_as_they_were(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    embedder.spec.profile = embedder_profile()
    deployment = {"metadata": {"generation": 1}, "spec": {"replicas": 1},
                  "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1,
                             "replicas": 1}}  # fmt: skip
    first = _run(_body(embedder), sample_tiers, deployment=deployment)
    settled = _run(_body(embedder, first.status), sample_tiers, NOW + timedelta(seconds=30),
                   deployment=deployment)  # fmt: skip
    body = _body(embedder, settled.status)
    for minutes in (1, 10, 90):
        again = _run(body, sample_tiers, NOW + timedelta(minutes=minutes), deployment=deployment)
        assert not merge_patch_changes(body["status"], again.status), minutes
        assert [digest(m) for m in again.apply] == [digest(m) for m in settled.apply]


def test_a_finished_cpu_profile_is_used_while_the_gpu_job_still_runs(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    first = _run(_body(embedder), sample_tiers)
    jobs, pods = _finished_jobs(first)
    cpu_only = [j for j in jobs if j["metadata"]["labels"]["tierwise.dev/profile-device"] == "cpu"]
    running = [{**j, "status": {}} for j in jobs if j not in cpu_only]
    later = _run(_body(embedder, first.status), sample_tiers, jobs=cpu_only + running, pods=pods)
    profiled = _condition(later, "Profiled")
    assert profiled["reason"] == "Profiling"
    assert "measured on cpu" in profiled["message"] and "measuring on cuda" in profiled["message"]
    assert later.create == []
    assert "profile" not in later.status or later.status["profile"] is None


def test_device_classes_without_nodes_are_not_profiled(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    cpu_node = {"node.kubernetes.io/instance-type": "m7i.4xlarge", "kubernetes.io/os": "linux"}
    actions = _run(_body(embedder), sample_tiers, node_labels=[cpu_node])
    assert [j["metadata"]["labels"]["tierwise.dev/profile-device"] for j in actions.create] == [
        "cpu"
    ]


def test_a_tierclass_that_does_not_exist_is_named_and_the_model_plans_on_the_rest(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    body = _body(embedder)
    body["spec"]["tierClasses"] = ["cpu-large", "gpu-a100"]
    body["spec"]["profile"] = embedder_profile().to_wire()
    actions = _run(body, sample_tiers)
    inputs = _condition(actions, "InputsResolved")
    assert (inputs["status"], inputs["reason"]) == ("False", "UnknownTierClass")
    assert 'no TierClass named "gpu-a100"' in inputs["message"]
    assert ("Warning", "UnknownTierClass") in [(e.type, e.reason) for e in actions.events]
    assert actions.status["tierClass"] == "cpu-large"
    # Reconciled again with that status: the condition holds, no second Event.
    again = _run(
        _body(embedder.model_copy(), actions.status) | {"spec": body["spec"]}, sample_tiers
    )
    assert "UnknownTierClass" not in [e.reason for e in again.events]
