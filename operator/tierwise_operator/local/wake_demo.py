"""Local mode's wake from zero: a second model at zero replicas, woken by its first request.

The copy reuses the profile just measured (inline, so no profiling runs), has
`replicas.min: 0` and no traffic floor, so the operator plans it at zero
replicas; one request through the gateway is held while the operator wakes it.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from ..emulator import Cluster
from .display import model_table

COLD = "ticket-embedder-cold"
Say = Callable[[str], None]


def cold_copy(model: dict[str, Any]) -> dict[str, Any]:
    """The measured model as a new one at zero replicas, its profile carried inline."""
    spec = copy.deepcopy(model["spec"])
    spec["profile"] = model["status"]["profile"]
    spec["replicas"] = {"min": 0, "max": spec["replicas"]["max"]}
    spec["traffic"] = {"headroom": spec["traffic"].get("headroom", "0%")}
    meta = {"name": COLD, "namespace": model["metadata"]["namespace"]}
    return {"apiVersion": model["apiVersion"], "kind": model["kind"], "metadata": meta,
            "spec": spec}  # fmt: skip


async def wake_from_zero(cluster: Cluster, gateway: str, model: dict[str, Any], say: Say) -> int:
    """Create the cold copy, wait for its plan at zero, send one request; 1 if it failed."""
    namespace = model["metadata"]["namespace"]
    await cluster.client.create("inferencemodels", cold_copy(model))
    planned = await cluster.client.wait_for(
        "inferencemodels", COLD, lambda m: (m.get("status") or {}).get("decision") is not None,
        namespace, timeout=120,
    )  # fmt: skip
    say(f"  created {COLD} with replicas.min 0: planned at "
        f"{planned['status'].get('replicas', 0)} replicas")  # fmt: skip
    body = {"model": COLD, "input": "Where is my parcel? It was due on Monday."}
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=180)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{gateway}/v1/embeddings", json=body) as resp,
    ):
        await resp.read()
        status = resp.status
    took = time.monotonic() - started
    woken = await cluster.client.get("inferencemodels", COLD, namespace)
    say(f"  POST {gateway}/v1/embeddings (model {COLD}): HTTP {status} after {took:.1f} s")
    await _show_wake_event(cluster, namespace, say)
    say(model_table([woken]))
    failed = int(status != 200)
    say(f"\n  woken from zero: 1 request, {failed} failed")
    return failed


async def _show_wake_event(cluster: Cluster, namespace: str, say: Say) -> None:
    for _ in range(20):
        events = await cluster.client.list("events", namespace)
        for event in events:
            if event.get("involvedObject", {}).get("name") == COLD and "woken by traffic" in (
                event.get("message") or ""
            ):
                say(f"  Event {event['type']} {event['reason']}: {event['message'][:200]}")
                return
        await asyncio.sleep(0.5)
    say("  (no Event about the wake yet)")
