"""Real requests for local mode: a steady stream of embeddings through whatever replicas are ready.

Like a Service behind a load balancer, each request goes to one ready replica
(round robin); a connection refused or a 503 from a replica that is just
draining is retried once on another, as Envoy or a cloud load balancer would.
A request that still fails counts as failed: through a tier move there must be none.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

Endpoints = Callable[[], list[str]]

TEXTS = (
    "My invoice for October was charged twice; please refund the duplicate payment.",
    "The mobile app crashes when I open the settings page after the latest update.",
    "How do I add a second administrator to our team workspace?",
    "Password reset emails never arrive, even after checking the spam folder.",
)


@dataclass
class LoadStats:
    ok: int = 0
    failed: int = 0
    retried: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def summary(self) -> str:
        return (
            f"{self.ok + self.failed} requests, {self.failed} failed, {self.retried} retried; "
            f"p50 {self.percentile(0.5) * 1000:.1f} ms, p99 {self.percentile(0.99) * 1000:.1f} ms"
        )


async def embed_once(
    session: aiohttp.ClientSession,
    endpoints: Endpoints,
    model: str,
    stats: LoadStats,
    turn: int,
    *,
    attempts: int = 2,
) -> None:
    body = {"model": model, "input": TEXTS[turn % len(TEXTS)]}
    started = time.perf_counter()
    last = "no ready replica"
    for attempt in range(attempts):
        urls = endpoints()
        if not urls:
            await asyncio.sleep(0.2)
            continue
        url = urls[(turn + attempt) % len(urls)]
        try:
            async with session.post(f"{url}/v1/embeddings", json=body) as resp:
                await resp.read()
                if resp.status == 200:
                    stats.ok += 1
                    stats.latencies.append(time.perf_counter() - started)
                    return
                if resp.status != 503:
                    stats.failed += 1
                    stats.errors.append(f"{url}: HTTP {resp.status}")
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            last = f"{url}: {type(exc).__name__}"
        else:
            last = f"{url}: HTTP 503"
        if attempt + 1 < attempts:
            stats.retried += 1
    stats.failed += 1
    stats.errors.append(last)


async def run_load(
    endpoints: Endpoints,
    model: str,
    rps: float,
    stop: asyncio.Event,
    stats: LoadStats,
    *,
    attempts: int = 2,
) -> None:
    """Send `rps` requests per second until `stop` is set, without waiting for answers.

    `attempts=1` sends each request once: through the gateway, which retries what
    never reached an engine itself, a client retry would hide a lost request.
    """
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        pending: set[asyncio.Task[None]] = set()
        for turn in itertools.count():
            if stop.is_set():
                break
            task = asyncio.create_task(
                embed_once(session, endpoints, model, stats, turn, attempts=attempts)
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(1.0 / rps)
        await asyncio.gather(*pending, return_exceptions=True)
