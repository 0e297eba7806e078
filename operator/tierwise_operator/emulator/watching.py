"""Watch streams with the resourceVersion semantics kopf and kubectl rely on.

Without a resourceVersion (or with "0", or `sendInitialEvents=true`) the
stream starts with ADDED events for the current objects; with one, it replays
the logged events after it, or answers 410 Gone when the log no longer
reaches back. Objects that move out of a label or field selector arrive as
DELETED, objects that move in as ADDED. `timeoutSeconds` ends the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from . import errors, tables
from .apiserver import ApiServer
from .registry import ResourceType
from .selectors import field_predicate, label_predicate
from .storage import Event, Gone

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class WatchRequest:
    """What one watch asks for, parsed from its query."""

    def __init__(self, rtype: ResourceType, namespace: str | None, params: dict[str, str]) -> None:
        self.rtype = rtype
        self.namespace = namespace if rtype.namespaced else None
        self.labels = label_predicate(params.get("labelSelector"))
        self.fields = field_predicate(params.get("fieldSelector"))
        self.since = params.get("resourceVersion") or ""
        if self.since and not self.since.isdigit():
            raise errors.bad_request(f"invalid resourceVersion: {self.since!r}")
        self.send_initial = params.get("sendInitialEvents") == "true"
        self.initial = self.send_initial or self.since in {"", "0"}
        self.bookmarks = params.get("allowWatchBookmarks") == "true"
        timeout = params.get("timeoutSeconds")
        self.deadline = time.monotonic() + float(timeout) if timeout else None

    def matches(self, obj: dict[str, Any] | None) -> bool:
        return obj is not None and self.labels(obj) and self.fields(obj)

    def translate(self, event: Event) -> str | None:
        """The event type this watcher sees, or None when the object is outside its selectors."""
        if event.type == "BOOKMARK":
            return event.type
        now, before = self.matches(event.object), self.matches(event.old)
        if event.type != "MODIFIED":
            return event.type if now else None
        if now and before:
            return "MODIFIED"
        return "ADDED" if now else ("DELETED" if before else None)


async def stream(
    api: ApiServer,
    watch: WatchRequest,
    closed: Callable[[], bool],
    table: bool = False,
) -> AsyncIterator[bytes | dict[str, Any]]:
    """The stream's chunks: an empty one to send the headers, then one event per chunk."""
    subscription = api.store.subscribe(watch.rtype, watch.namespace)
    try:
        yield b""
        try:
            backlog = _backlog(api, watch)
        except Gone as exc:
            yield _error(410, "Expired", str(exc))
            return
        for event in backlog:
            kind = watch.translate(event)
            if kind is not None:
                yield _render(watch, Event(kind, event.rtype, event.object), table)
        while not closed():
            event = await _next(subscription.queue, watch.deadline)
            if event is _IDLE:
                if watch.deadline is not None and time.monotonic() >= watch.deadline:
                    return
                continue
            if not isinstance(event, Event):
                return  # the store closed: the server is stopping
            kind = watch.translate(event)
            if kind is not None:
                yield _render(watch, Event(kind, event.rtype, event.object), table)
    finally:
        subscription.close()


def _backlog(api: ApiServer, watch: WatchRequest) -> list[Any]:
    if not watch.initial:
        return api.store.since(watch.rtype, watch.namespace, int(watch.since))
    items = api.store.peek(watch.rtype, watch.namespace)
    events: list[Any] = [Event("ADDED", watch.rtype, obj) for obj in items]
    if watch.send_initial and watch.bookmarks:
        bookmark = {
            "kind": watch.rtype.kind,
            "apiVersion": watch.rtype.api_version,
            "metadata": {
                "resourceVersion": api.store.resource_version,
                "annotations": {INITIAL_EVENTS_END: "true"},
            },
        }
        events.append(Event("BOOKMARK", watch.rtype, bookmark))
    return events


_IDLE = object()


async def _next(queue: asyncio.Queue[Event | None], deadline: float | None) -> object:
    """The next event (None: the store closed), or _IDLE after a second without one."""
    wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
    try:
        return await asyncio.wait_for(queue.get(), timeout=wait)
    except TimeoutError:
        return _IDLE


def _render(watch: WatchRequest, event: Event, table: bool) -> dict[str, Any]:
    obj = event.object
    if table and event.type != "BOOKMARK":
        version = obj["metadata"]["resourceVersion"]
        obj = tables.table(watch.rtype, [obj], resource_version=version)
    return {"type": event.type, "object": obj}


def _error(code: int, reason: str, message: str) -> dict[str, Any]:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    return {"type": "ERROR", "object": status}
