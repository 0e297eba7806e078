"""Run a kopf operator in this event loop against an API server URL (the emulator's).

`kopf.operator()` cancels, on exit, every task created while it ran, taking
the emulator's connection handlers and kubelet tasks with it (kopf's own
TODO says so). This runner spawns kopf's root tasks itself and, on exit,
stops only the roots and the tasks whose coroutines are kopf's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import kopf

_LOGIN_ID = "tierwise-emulator-login"
_URLS: weakref.WeakKeyDictionary[kopf.OperatorRegistry, str] = weakref.WeakKeyDictionary()


def _ensure_login(registry: kopf.OperatorRegistry, url: str) -> None:
    """One login handler per registry, reading the current URL (registries outlive restarts)."""
    _URLS[registry] = url
    if any(h.id == _LOGIN_ID for h in registry._activities.get_all_handlers()):
        return

    @kopf.on.login(id=_LOGIN_ID, registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=_URLS[registry], insecure=True)


def fast_settings() -> kopf.OperatorSettings:
    """Settings for tests: quick retries and exits; everything else as kopf ships it."""
    settings = kopf.OperatorSettings()
    settings.queueing.idle_timeout = 1.0
    settings.queueing.exit_timeout = 1.0
    settings.queueing.error_delays = [0.1, 0.2, 0.5, 1.0]
    settings.watching.reconnect_backoff = 0.1
    settings.networking.error_backoffs = [0.1, 0.2, 0.5]
    settings.posting.level = logging.INFO
    return settings


@contextlib.asynccontextmanager
async def run_operator(
    url: str,
    *,
    registry: kopf.OperatorRegistry | None = None,
    settings: kopf.OperatorSettings | None = None,
    namespaces: Collection[str] = (),
    configure: Callable[[kopf.OperatorSettings], None] | None = None,
    ready_timeout: float = 10.0,
    exit_timeout: float = 1.0,
    memo: object | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run kopf standalone (cluster-wide unless `namespaces`) until the block exits.

    On exit kopf's tasks get `exit_timeout` seconds to finish (timers and daemons
    linger otherwise) before they are cancelled.
    """
    registry = registry if registry is not None else kopf.get_default_registry()
    _ensure_login(registry, url)
    settings = settings if settings is not None else fast_settings()
    if configure is not None:
        configure(settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    before = asyncio.all_tasks()
    roots = await kopf.spawn_tasks(
        registry=registry,
        settings=settings,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        stop_flag=stop,
        ready_flag=ready,
        memo=memo,
    )
    task = asyncio.create_task(_supervise(roots, before, exit_timeout), name="kopf-operator")
    try:
        await asyncio.wait_for(_ready_or_failed(ready, task), timeout=ready_timeout)
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10.0)


async def _supervise(
    roots: Collection[asyncio.Task[Any]], before: set[asyncio.Task[Any]], grace: float
) -> None:
    """What `kopf.run_tasks` does, minus cancelling tasks that are not kopf's."""
    done: set[asyncio.Task[Any]] = set()
    try:
        done, _ = await asyncio.wait(roots, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for root in roots:
            root.cancel()
        await asyncio.gather(*roots, return_exceptions=True)
        await _stop_leftovers(before, grace)
    for root in done:
        if not root.cancelled() and root.exception() is not None:
            raise root.exception()  # type: ignore[misc]


async def _stop_leftovers(before: set[asyncio.Task[Any]], grace: float) -> None:
    current = asyncio.current_task()
    mine = [t for t in asyncio.all_tasks() if t not in before and t is not current and _kopfs(t)]
    if mine:
        _, pending = await asyncio.wait(mine, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _kopfs(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and f"{os.sep}kopf{os.sep}" in code.co_filename


async def _ready_or_failed(ready: asyncio.Event, task: asyncio.Task[None]) -> None:
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises what stopped the operator
        raise RuntimeError("the operator exited before it was ready")
