"""Objects in memory: one global resourceVersion counter, an event log, and watch subscriptions.

The store knows nothing of API semantics (see `apiserver`): it keeps the latest
version of every object, stamps each write with the next resourceVersion, and
tells subscribers. Everything runs on the event loop's thread, so a write and
its notifications are atomic without locks.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from .registry import ResourceType

Key = tuple[str | None, str]  # (namespace, name); namespace None for cluster-scoped kinds


@dataclasses.dataclass(frozen=True)
class Event:
    """One change: ADDED, MODIFIED or DELETED, with the object as stored (never change it)."""

    type: str
    rtype: ResourceType
    object: dict[str, Any]
    old: dict[str, Any] | None = None  # the previous version, for MODIFIED events

    @property
    def resource_version(self) -> int:
        return int(self.object["metadata"]["resourceVersion"])

    @property
    def namespace(self) -> str | None:
        ns: str | None = self.object["metadata"].get("namespace")
        return ns


class Gone(Exception):
    """A watch asked for a resourceVersion older than the event log remembers (HTTP 410)."""


class Subscription:
    """Events of one resource type (optionally one namespace), queued for one watcher."""

    def __init__(self, store: Store, rtype: ResourceType, namespace: str | None) -> None:
        self.store = store
        self.rtype = rtype
        self.namespace = namespace
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def matches(self, event: Event) -> bool:
        same = (event.rtype.group, event.rtype.plural) == (self.rtype.group, self.rtype.plural)
        return same and self.namespace in (None, event.namespace)

    def close(self) -> None:
        self.store.unsubscribe(self)
        self.queue.put_nowait(None)


def _family(rtype: ResourceType) -> tuple[str, str]:
    return rtype.group, rtype.plural


class Store:
    """The latest version of every object, by type and (namespace, name)."""

    def __init__(self, *, history: int = 10_000) -> None:
        self._objects: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
        self._by_uid: dict[str, tuple[ResourceType, Key]] = {}
        self._log: collections.deque[Event] = collections.deque(maxlen=history)
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._rv = 0

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion handed out, as lists report it."""
        return str(self._rv)

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self._objects.get(_family(rtype), {}).get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, rtype: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the objects of a type, in one namespace or all, sorted by namespace/name."""
        return [copy.deepcopy(obj) for obj in self.peek(rtype, namespace)]

    def peek(self, rtype: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects themselves, sorted like `items`: read them, never change them."""
        objects = self._objects.get(_family(rtype), {})
        keys = sorted((k for k in objects if namespace is None or k[0] == namespace), key=str)
        return [objects[k] for k in keys]

    def by_uid(self, uid: str) -> tuple[ResourceType, Key] | None:
        return self._by_uid.get(uid)

    def all_uids(self) -> Iterator[tuple[str, ResourceType, Key]]:
        for uid, (rtype, key) in list(self._by_uid.items()):
            yield uid, rtype, key

    def put(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new or changed object under the next resourceVersion; return a copy."""
        meta = obj["metadata"]
        key = (meta.get("namespace"), meta["name"])
        objects = self._objects.setdefault(_family(rtype), {})
        old = objects.get(key)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        stored = objects[key] = copy.deepcopy(obj)  # never changed in place: events share it
        self._by_uid[meta["uid"]] = (rtype, key)
        self._emit(Event("MODIFIED" if old else "ADDED", rtype, stored, old))
        return obj

    def remove(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """Forget an object; the DELETED event carries a fresh resourceVersion."""
        stored = self._objects[_family(rtype)].pop((namespace, name))
        self._by_uid.pop(stored["metadata"]["uid"], None)
        self._rv += 1
        final = {**stored, "metadata": {**stored["metadata"], "resourceVersion": str(self._rv)}}
        self._emit(Event("DELETED", rtype, final))
        return copy.deepcopy(final)

    def since(self, rtype: ResourceType, namespace: str | None, rv: int) -> list[Event]:
        """Logged events of a type after `rv`; raises Gone if the log no longer reaches back."""
        if self._log and rv < self._log[0].resource_version - 1:
            raise Gone(f"too old resource version: {rv} ({self._log[0].resource_version - 1})")
        probe = Subscription(self, rtype, namespace)
        return [e for e in self._log if e.resource_version > rv and probe.matches(e)]

    def subscribe(self, rtype: ResourceType, namespace: str | None) -> Subscription:
        subscription = Subscription(self, rtype, namespace)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def listen(self, callback: Callable[[Event], None]) -> None:
        """Call `callback` synchronously for every event (controllers queue work from it)."""
        self._listeners.append(callback)

    def unlisten(self, callback: Callable[[Event], None]) -> None:
        self._listeners.remove(callback)

    def close(self) -> None:
        """End every watch stream."""
        for subscription in list(self._subscriptions):
            subscription.close()

    def _emit(self, event: Event) -> None:
        self._log.append(event)
        for subscription in list(self._subscriptions):
            if subscription.matches(event):
                subscription.queue.put_nowait(event)
        for listener in list(self._listeners):
            listener(event)
