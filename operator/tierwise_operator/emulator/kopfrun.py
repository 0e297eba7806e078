"""Run a kopf operator in this event loop against an API server URL (the emulator's)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    memo: object | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """Start `kopf.operator(standalone=True)` (cluster-wide unless `namespaces`), stop on exit."""
    registry = registry if registry is not None else kopf.get_default_registry()
    _ensure_login(registry, url)
    settings = settings if settings is not None else fast_settings()
    if configure is not None:
        configure(settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            stop_flag=stop,
            ready_flag=ready,
            memo=memo,
        ),
        name="kopf-operator",
    )
    try:
        await asyncio.wait_for(_ready_or_failed(ready, task), timeout=ready_timeout)
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10.0)


async def _ready_or_failed(ready: asyncio.Event, task: asyncio.Task[None]) -> None:
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises what stopped the operator
        raise RuntimeError("the operator exited before it was ready")
