"""High availability as deploy/ha installs it: several `tierwise run --peering tierwise`
processes, of which the live one with the highest priority works and the others wait.

Each replica runs as its own process (as pods do) against the API emulator, with the
ClusterKopfPeering of deploy/components/peering.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import NAMESPACE, Env, condition, embedder, eventually

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def replica(
    env: Env, tmp_path: Path, name: str, *extra: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`tierwise run --peering tierwise` as pod `name` (kopf's identity is its POD_ID)."""
    kubeconfig = env.cluster.write_kubeconfig(tmp_path / f"{name}.kubeconfig")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TIERWISE_")}
    command = [sys.executable, "-m", "tierwise_operator.cli", "run", "--all-namespaces",
               "--peering", "tierwise", "--port", "0", *extra]  # fmt: skip
    log = (tmp_path / f"{name}.log").open("wb")
    process = subprocess.Popen(
        command,
        env=inherited
        | {
            "KUBECONFIG": str(kubeconfig),
            "POD_ID": name,
            "TIERWISE_REPLAN_INTERVAL": "2s",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


async def peers(env: Env, count: int) -> dict[str, dict[str, Any]]:
    """The replicas registered in the ClusterKopfPeering, by identity, once there are `count`."""

    async def registered() -> dict[str, dict[str, Any]] | None:
        peering = await env.cluster.client.get("clusterkopfpeerings", "tierwise", None)
        found = dict((peering or {}).get("status") or {})
        return found if len(found) == count else None

    result: dict[str, dict[str, Any]] = await eventually(registered, timeout=30)
    return result


async def ready(env: Env, name: str) -> None:
    await env.wait_model(name, lambda m: condition(m, "Ready").get("status") == "True", 60)


async def test_one_replica_works_and_another_takes_over_when_it_stops(
    env: Env, tmp_path: Path
) -> None:
    async with replica(env, tmp_path, "replica-a") as a, replica(env, tmp_path, "replica-b") as b:
        registered = await peers(env, count=2)
        priorities = {name: peer["priority"] for name, peer in registered.items()}
        assert len(set(priorities.values())) == 2, f"replicas tie: {priorities}"
        await env.cluster.client.create("inferencemodels", embedder("first"))
        await ready(env, "first")
        # Stop the working replica (the higher priority); the other must carry on.
        working = max(priorities, key=lambda name: priorities[name])
        process = a if working == "replica-a" else b
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 20)
        assert set(await peers(env, count=1)) == set(priorities) - {working}
        await env.cluster.client.create("inferencemodels", embedder("second"))
        await ready(env, "second")


async def test_replicas_of_equal_priority_both_freeze(env: Env, tmp_path: Path) -> None:
    """Why `tierwise run --peering` draws its priority: kopf pauses every replica of a tie."""
    async with (
        replica(env, tmp_path, "replica-a", "--priority", "5"),
        replica(env, tmp_path, "replica-b", "--priority", "5"),
    ):
        await peers(env, count=2)
        await env.cluster.client.create("inferencemodels", embedder("first"))
        await asyncio.sleep(5)
        found = await env.cluster.client.list("deployments", NAMESPACE)
        assert found == [] and not (await env.model("first")).get("status")
