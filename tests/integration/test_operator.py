"""The operator end to end: from an InferenceModel to a right-sized, observed, self-healing plan."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import GIB, NAMESPACE, Env, condition, embedder, eventually

pytestmark = pytest.mark.slow


async def _deployment(env: Env, name: str = "ticket-embedder") -> dict[str, Any] | None:
    found = await env.cluster.client.list(
        "deployments", NAMESPACE, labels=f"tierwise.dev/model={name}"
    )
    return found[0] if found else None


async def _jobs(env: Env, at_least: int) -> list[dict[str, Any]] | None:
    found = await env.cluster.client.list("jobs", NAMESPACE)
    return found if len(found) >= at_least else None


def _args(deployment: dict[str, Any]) -> list[str]:
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def _arg(deployment: dict[str, Any], flag: str) -> str | None:
    args = _args(deployment)
    return args[args.index(flag) + 1] if flag in args else None


async def test_create_profiles_then_serves_at_the_planned_precision(env: Env) -> None:
    async with env.operator():
        await env.cluster.client.create("inferencemodels", embedder())
        jobs = await eventually(lambda: _jobs(env, at_least=2))  # created one after the other
        assert sorted(j["metadata"]["labels"]["tierwise.dev/profile-device"] for j in jobs) == [
            "cpu", "cuda"]  # fmt: skip
        model = await env.wait_model(
            "ticket-embedder", lambda m: condition(m, "Profiled").get("reason") == "ProfileMeasured"
        )
        model = await env.wait_model(
            "ticket-embedder", lambda m: condition(m, "Ready").get("status") == "True"
        )
        status = model["status"]
        # The estimated first plan holds unless the measured profile saves more than the
        # 10% margin: on this profile fp32 and int8 on cpu-large cost the same.
        assert status["tierClass"] == "cpu-large" and status["precision"] in {"fp32", "int8"}
        assert status["decision"]["estimated"] is False
        assert condition(model, "MetricsAvailable")["status"] == "True"
        assert condition(model, "AccuracyWithinBudget")["status"] == "True"
        assert status["observedGeneration"] == model["metadata"]["generation"]
        # No finalizer: deleting a model never waits for the operator to be running.
        assert not model["metadata"].get("finalizers")
        deployment = await _deployment(env)
        assert deployment is not None
        assert _arg(deployment, "--precision") == status["precision"]
        assert _arg(deployment, "--device") == "cpu"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"]["memory"] == str(status["memory"]["requestBytes"])
        assert deployment["metadata"]["ownerReferences"][0]["uid"] == model["metadata"]["uid"]
        services = await env.cluster.client.list("services", NAMESPACE)
        assert [s["metadata"]["name"] for s in services] == ["ticket-embedder"]

        # Events are posted right after the status that records their change.
        async def all_posted() -> bool:
            reasons = {e["reason"] for e in await env.events("ticket-embedder")}
            return {"Profiling", "ProfileMeasured", "Planned"} <= reasons

        assert await eventually(all_posted, timeout=10)


async def test_invalid_spec_sets_invalidspec_and_creates_no_children(env: Env) -> None:
    doc = embedder()
    doc["spec"]["slo"]["latencyP99"] = "fast"  # the CRD's pattern refuses this...
    doc["spec"]["slo"]["latencyP99"] = "50ms"
    doc["spec"]["tierClasses"] = ["gpu-h100"]
    doc["spec"]["model"]["variants"] = [{"name": "primary", "source": {"uri": "builtin://x"}}]
    async with env.operator():
        # ...so the test uses a rule only the models enforce: `primary` is reserved.
        await env.cluster.client.create("inferencemodels", doc)
        model = await env.wait_model(
            "ticket-embedder", lambda m: condition(m, "Ready").get("reason") == "InvalidSpec"
        )
        assert '"primary" names spec.model.source' in condition(model, "Ready")["message"]
        await eventually(lambda: env.events("ticket-embedder"))
        assert await env.cluster.client.list("deployments", NAMESPACE) == []
        assert await env.cluster.client.list("jobs", NAMESPACE) == []
        warnings = [e for e in await env.events("ticket-embedder") if e["reason"] == "InvalidSpec"]
        assert warnings and warnings[0]["type"] == "Warning"


async def test_memory_pressure_keeps_the_model_off_a_full_tier_and_relief_moves_it_back(
    env: Env,
) -> None:
    # The cpu-large nodes are nearly full: the model must go where there is room.
    env.fleet.host_available.update({"cpu-1": GIB // 4, "cpu-2": GIB // 4})
    await env.publish()
    async with env.operator():
        await env.cluster.client.create("inferencemodels", embedder())
        model = await env.wait_model(
            "ticket-embedder", lambda m: (m.get("status") or {}).get("tierClass") is not None
            and condition(m, "Profiled").get("reason") == "ProfileMeasured"
            and condition(m, "MetricsAvailable").get("status") == "True",
        )  # fmt: skip
        assert model["status"]["tierClass"] == "nvme-offload"
        # The pressure goes away: cpu-large is cheaper and now fits, so the model moves.
        env.fleet.host_available.update({"cpu-1": 60 * GIB, "cpu-2": 60 * GIB})
        await env.publish()
        model = await env.wait_model(
            "ticket-embedder", lambda m: m["status"].get("tierClass") == "cpu-large"
        )
        # "kept" when a later re-plan already ran after the move
        assert model["status"]["decision"]["change"] in {"re-tier", "kept"}
        deployment = await _deployment(env)
        assert deployment is not None and _arg(deployment, "--offload-dir") is None
        assert await env.event("ticket-embedder", "PlanChanged", "re-tier")


async def test_prometheus_down_marks_metrics_unavailable_and_holds_the_tier(env: Env) -> None:
    env.fleet.host_available.update({"cpu-1": GIB // 4, "cpu-2": GIB // 4})
    await env.publish()
    settings = env.settings
    async with env.operator():
        await env.cluster.client.create("inferencemodels", embedder())
        await env.wait_model(
            "ticket-embedder", lambda m: (m.get("status") or {}).get("tierClass") == "nvme-offload"
            and condition(m, "Profiled").get("reason") == "ProfileMeasured",
        )  # fmt: skip
    # Prometheus goes away; the Kubernetes API alone would show room on cpu-large.
    env.settings = type(settings)(**{**settings.__dict__, "prometheus_url": "http://127.0.0.1:9"})
    async with env.operator():
        model = await env.wait_model(
            "ticket-embedder", lambda m: condition(m, "MetricsAvailable").get("status") == "False"
        )
        assert condition(model, "MetricsAvailable")["reason"] == "PrometheusUnreachable"
        await eventually(lambda: _still_offload_after_replans(env), timeout=20)


async def _still_offload_after_replans(env: Env) -> bool:
    model = await env.model("ticket-embedder")
    assert model["status"]["tierClass"] == "nvme-offload"
    rejected = {r["candidate"]: r["why"] for r in model["status"]["decision"]["rejected"]}
    return "metrics are stale" in rejected.get("int8/cpu-large", "")


async def test_an_oomkilled_candidate_is_excluded_and_the_model_moves(env: Env) -> None:
    # Whichever candidate the planner serves first is the one that runs out of memory: the
    # test must not depend on which one the estimates or the measured profile favour.
    env.behaviours.oom_first_served = True
    async with env.operator():
        await env.cluster.client.create("inferencemodels", embedder())
        model = await env.wait_model(
            "ticket-embedder", lambda m: bool((m.get("status") or {}).get("failedCandidates")),
            timeout=60,
        )  # fmt: skip
        (oomed,) = env.behaviours.oom_candidates
        failed = model["status"]["failedCandidates"][0]
        assert failed["candidate"] == oomed
        assert "OOMKilled" in failed["reason"] and failed["retryAfter"] > failed["at"]
        model = await env.wait_model(
            "ticket-embedder", lambda m: condition(m, "Degraded").get("reason") == "CandidateFailed"
            and m["status"].get("precision") and
            f"{m['status']['precision']}/{m['status']['tierClass']}" != oomed,
            timeout=60,
        )  # fmt: skip
        assert await env.event("ticket-embedder", "CandidateFailed", "OOMKilled")


async def test_restarting_the_operator_duplicates_nothing(env: Env) -> None:
    async with env.operator():
        await env.cluster.client.create("inferencemodels", embedder())
        await env.wait_model(
            "ticket-embedder", lambda m: condition(m, "Ready").get("status") == "True"
            and condition(m, "Profiled").get("status") == "True",
        )  # fmt: skip
    before = await _children(env)
    async with env.operator():
        await eventually(lambda: _reconciled_since_restart(env), timeout=20)
    assert await _children(env) == before


async def _children(env: Env) -> dict[str, list[str]]:
    out = {}
    for kind in ("deployments", "services", "jobs", "poddisruptionbudgets"):
        items = await env.cluster.client.list(kind, NAMESPACE)
        out[kind] = sorted(i["metadata"]["uid"] for i in items)
    return out


async def _reconciled_since_restart(env: Env) -> bool:
    model = await env.model("ticket-embedder")
    return bool(model["status"].get("readyReplicas"))


async def _settled(env: Env) -> bool:
    """Profiled, and every planned replica is ready: nothing is left to roll out."""
    model = await env.model("ticket-embedder")
    status = model.get("status") or {}
    deployment = await _deployment(env)
    if deployment is None or condition(model, "Profiled").get("status") != "True":
        return False
    rolled = deployment.get("status") or {}
    planned = status.get("replicas")
    return (
        condition(model, "Progressing").get("status") == "False"
        and deployment["spec"]["replicas"] == planned
        and rolled.get("replicas") == rolled.get("readyReplicas") == planned
        and status.get("readyReplicas") == planned
    )


async def test_a_plan_that_holds_sends_no_writes_and_drift_is_repaired(env: Env) -> None:
    async with env.operator():
        await env.cluster.client.create("inferencemodels", embedder())
        await eventually(lambda: _settled(env), timeout=60)
        served = env.cluster.emulator.served
        await asyncio.sleep(1.5)  # let the writes of the last change come back on the watch
        before = served.copy()
        await asyncio.sleep(3.5)  # three or more re-plan rounds at 1 s
        sent = {k: n for k, n in (served - before).items() if k[0] != "GET" or k[1] == "events"}
        assert sent == {}, f"writes while the plan held: {sent}"
        # Someone edits the Deployment by hand: the next round applies the plan again.
        deployment = await _deployment(env)
        assert deployment is not None
        await env.cluster.client.patch(
            "deployments", "ticket-embedder", {"spec": {"replicas": 5}}, NAMESPACE
        )
        repaired = await eventually(
            lambda: _deployment_with(env, lambda d: d["spec"]["replicas"] != 5), timeout=10
        )
        assert repaired["spec"]["replicas"] == deployment["spec"]["replicas"]


async def _deployment_with(env: Env, predicate: Any) -> dict[str, Any] | None:
    found = await _deployment(env)
    return found if found is not None and predicate(found) else None
