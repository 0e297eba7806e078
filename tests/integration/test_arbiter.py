"""The live operator arbitrates the fleet: a higher priority gets the device it needs, the
lower one moves to its next candidate and keeps serving, both are told; bursts are few rounds."""

from __future__ import annotations

from typing import Any

import pytest

from ..operator.profiles import embedder_profile
from .conftest import NAMESPACE, Env, condition, embedder, eventually

pytestmark = pytest.mark.slow


def training_job() -> dict[str, Any]:
    """A pod tierwise does not plan, holding seven of gpu-1's eight devices."""
    gpus = {"nvidia.com/gpu": "7"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "training-job", "namespace": NAMESPACE},
        "spec": {
            "nodeName": "gpu-1",
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [{"name": "train", "image": "trainer",
                            "resources": {"requests": gpus, "limits": gpus}}],
        },
    }  # fmt: skip


def measured(name: str) -> dict[str, Any]:
    """The sample embedder with its profile inline: planned on measured figures from the
    first round, so no profile Job takes the last device and no second rollout follows (a
    GPU Deployment surging onto a second device with none free would wait forever)."""
    doc = embedder(name)
    doc["spec"]["profile"] = embedder_profile().to_wire()
    return doc


def low_priority() -> dict[str, Any]:
    doc = measured("batch-embedder")
    doc["spec"]["priority"] = 10
    doc["spec"]["tierClasses"] = ["gpu-h100", "cpu-large"]
    return doc


def vip() -> dict[str, Any]:
    """Needs a GPU: no CPU candidate answers within 3 ms."""
    doc = measured("vip-embedder")
    doc["spec"]["priority"] = 100
    doc["spec"]["slo"]["latencyP99"] = "3ms"
    return doc


def on(tier: str) -> Any:
    def check(m: dict[str, Any]) -> bool:
        status = m.get("status") or {}
        return status.get("tierClass") == tier and bool(status.get("readyReplicas"))

    return check


async def test_a_higher_priority_takes_the_gpu_and_the_lower_moves_to_cpu_and_keeps_serving(
    env: Env,
) -> None:
    # One GPU device is left, and CPU nodes are dear: both models would rather have the GPU.
    await env.cluster.client.create("pods", training_job())
    await env.cluster.client.patch(
        "tierclasses", "cpu-large", {"spec": {"pricing": {"perNodeHour": "64.00"}}}
    )
    async with env.operator():
        await env.cluster.client.create("inferencemodels", low_priority())
        await env.wait_model("batch-embedder", on("gpu-h100"), timeout=60)

        await env.cluster.client.create("inferencemodels", vip())
        high = await env.wait_model("vip-embedder", on("gpu-h100"), timeout=60)
        # Once its old replica has given the device back, the room it wants is visibly
        # another model's: Degraded says so.
        low = await env.wait_model(
            "batch-embedder",
            lambda m: on("cpu-large")(m) and condition(m, "Degraded").get("reason") == "Displaced",
            timeout=60,
        )
        assert high["status"]["decision"]["solver"] in {"exact", "heuristic"}
        assert high["status"]["decision"]["round"].startswith("r")
        degraded = condition(low, "Degraded")
        assert degraded["reason"] == "Displaced"
        assert f"{NAMESPACE}/vip-embedder holds it (higher priority)" in degraded["message"]
        assert low["status"]["decision"]["displacedBy"] == [f"{NAMESPACE}/vip-embedder"]
        assert "to come back it needs 1 free GPU device" in degraded["message"]
        assert condition(low, "Ready")["status"] == "True"
        assert await env.event("batch-embedder", "Displaced", "vip-embedder")
        assert await env.event("vip-embedder", "Preempted", "batch-embedder")


async def test_a_burst_of_creates_is_planned_in_few_rounds(env: Env) -> None:
    count = 12
    async with env.operator():
        for i in range(count):
            await env.cluster.client.create("inferencemodels", embedder(f"burst-{i}"))

        async def first_rounds() -> set[str] | None:
            models = await env.cluster.client.list("inferencemodels", NAMESPACE)
            rounds = {((m.get("status") or {}).get("decision") or {}).get("round") for m in models}
            return rounds if len(models) == count and None not in rounds else None

        # Each model records the round that first reached its decision: the creates were
        # planned together, in far fewer rounds than one per model.
        rounds = await eventually(first_rounds, timeout=60)
        assert 1 <= len(rounds) <= count // 2, rounds
