"""An InferenceModel named like someone else's Deployment or Service never takes it over.

The real operator against the API emulator: the stranger's object is neither
applied over, adopted nor deleted with the model; the model says NameConflict
and serves nothing until the name is free.
"""

from __future__ import annotations

from typing import Any

import pytest

from ...integration.conftest import NAMESPACE, Env, condition, embedder, eventually

pytestmark = pytest.mark.slow

MODEL = "ticket-embedder"
USER_LABELS = {"app": "team-b-web"}


def users_deployment(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": MODEL, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": USER_LABELS},
            "template": {
                "metadata": {"labels": USER_LABELS},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def users_service(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": MODEL, "namespace": NAMESPACE, "labels": labels},
        "spec": {"selector": USER_LABELS, "ports": [{"port": 8080, "targetPort": 8080}]},
    }


# A stranger's object, plain or wearing tierwise's own labels (which put it in the
# operator's watch): either way it is not the model's.
LOOKALIKE = {"app.kubernetes.io/managed-by": "tierwise", "tierwise.dev/model": MODEL}
CASES = [
    pytest.param("deployments", "Deployment", users_deployment, USER_LABELS, id="deployment"),
    pytest.param("deployments", "Deployment", users_deployment, LOOKALIKE, id="lookalike"),
    pytest.param("services", "Service", users_service, USER_LABELS, id="service"),
]


def _untouched(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert not after["metadata"].get("ownerReferences")
    assert after["metadata"].get("labels") == before["metadata"].get("labels")
    assert after["spec"] == before["spec"]


async def _conflicted(env: Env, kind: str) -> dict[str, Any]:
    return await env.wait_model(
        MODEL, lambda m: condition(m, "Ready").get("reason") == "NameConflict", timeout=30
    )


@pytest.mark.parametrize(("plural", "kind", "build", "labels"), CASES)
async def test_a_users_object_named_like_the_model_survives_its_create_and_delete(
    env: Env, plural: str, kind: str, build: Any, labels: dict[str, str]
) -> None:
    client = env.cluster.client
    theirs = await client.create(plural, build(labels), NAMESPACE)
    async with env.operator():
        model = await client.create("inferencemodels", embedder())
        model = await _conflicted(env, kind)
        ready = condition(model, "Ready")
        assert ready["status"] == "False"
        assert f"{kind} {NAMESPACE}/{MODEL} already exists" in ready["message"]
        warning = await env.event(MODEL, "NameConflict", f"{kind} {NAMESPACE}/{MODEL}")
        assert warning["type"] == "Warning"
        # Several re-plan rounds later it is still untouched, and nothing serves the model.
        await _rounds(env, 3)
        _untouched(theirs, await client.get(plural, MODEL, NAMESPACE))
        ours = {"deployments": [], "services": []}
        for child in ours:
            found = await client.list(child, NAMESPACE)
            ours[child] = [o for o in found if _owned_by(o, model["metadata"]["uid"])]
        assert ours == {"deployments": [], "services": []}
        # Deleting the model collects what it owns (a marker), and only that.
        marker = await client.create("configmaps", _owned_marker(model), NAMESPACE)
        await client.delete("inferencemodels", MODEL, NAMESPACE)
        await eventually(lambda: _gone(env, "configmaps", marker["metadata"]["name"]))
    _untouched(theirs, await client.get(plural, MODEL, NAMESPACE))


async def test_when_the_name_frees_up_the_model_is_served(env: Env) -> None:
    client = env.cluster.client
    await client.create("deployments", users_deployment(USER_LABELS), NAMESPACE)
    async with env.operator():
        model = await client.create("inferencemodels", embedder())
        await _conflicted(env, "Deployment")
        await client.delete("deployments", MODEL, NAMESPACE)
        model = await env.wait_model(
            MODEL, lambda m: condition(m, "Ready").get("reason") != "NameConflict", timeout=30
        )
        ours = await eventually(lambda: _owned_deployment(env, model["metadata"]["uid"]))
        assert ours["spec"]["template"]["spec"]["containers"][0]["name"] == "runtime"
        await env.wait_model(MODEL, lambda m: condition(m, "Ready").get("status") == "True")


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def _owned_marker(model: dict[str, Any]) -> dict[str, Any]:
    meta = model["metadata"]
    ref = {"apiVersion": model["apiVersion"], "kind": "InferenceModel", "name": meta["name"],
           "uid": meta["uid"]}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned-marker", "namespace": NAMESPACE, "ownerReferences": [ref]},
        "data": {},
    }


async def _gone(env: Env, plural: str, name: str) -> bool:
    names = [o["metadata"]["name"] for o in await env.cluster.client.list(plural, NAMESPACE)]
    return name not in names


async def _rounds(env: Env, n: int) -> None:
    """Wait until `n` more re-plan rounds have run: each starts by listing the nodes."""
    served = env.cluster.emulator.served
    start = served["GET", "nodes"]

    async def done() -> bool:
        return served["GET", "nodes"] >= start + n + 1  # +1: the last round's re-plan ran

    await eventually(done, timeout=20)


async def _owned_deployment(env: Env, uid: str) -> dict[str, Any] | None:
    found = await env.cluster.client.list("deployments", NAMESPACE)
    return next((d for d in found if _owned_by(d, uid)), None)
