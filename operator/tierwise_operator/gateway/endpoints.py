"""Where each model can be served now: its ready replicas, kept current by the watcher."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

ModelKey = tuple[str, str]
"""(namespace, InferenceModel name)."""


@dataclass(eq=False)
class Endpoint:
    """One ready replica: its base URL and the requests the gateway has outstanding on it."""

    url: str
    outstanding: int = 0


@dataclass(eq=False)
class Route:
    """One InferenceModel as the gateway sees it."""

    namespace: str
    name: str
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def key(self) -> ModelKey:
        return self.namespace, self.name

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"

    def set_endpoints(self, urls: Iterable[str]) -> None:
        """Replace the ready set; an endpoint still ready keeps its outstanding count."""
        wanted = set(urls)
        if wanted == set(self.endpoints):
            return
        self.endpoints = {u: self.endpoints.get(u) or Endpoint(u) for u in sorted(wanted)}
        self.notify()

    def notify(self) -> None:
        """Wake everyone waiting for this route to change."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float) -> bool:
        """Wait until the ready set changes or `timeout` passes; True if it changed."""
        event = self._changed
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        return True


class Ambiguous(LookupError):
    """A bare model name that several namespaces have."""

    def __init__(self, name: str, namespaces: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.namespaces = namespaces


class Directory:
    """Every InferenceModel the gateway may see, by key, and its ready endpoints."""

    def __init__(self) -> None:
        self.routes: dict[ModelKey, Route] = {}
        self.pending: dict[ModelKey, set[str]] = {}
        """Ready endpoints seen before their model (the two watches race)."""

    def add_model(self, namespace: str, name: str) -> Route:
        key = (namespace, name)
        route = self.routes.get(key)
        if route is None:
            route = self.routes[key] = Route(namespace, name)
            route.set_endpoints(self.pending.pop(key, set()))
        return route

    def remove_model(self, namespace: str, name: str) -> None:
        route = self.routes.pop((namespace, name), None)
        if route is not None:
            route.set_endpoints(())
            route.notify()

    def set_endpoints(self, key: ModelKey, urls: Iterable[str]) -> None:
        route = self.routes.get(key)
        if route is None:
            self.pending[key] = set(urls)
            return
        route.set_endpoints(urls)

    def resolve(self, model: str) -> Route | None:
        """`namespace/name` or a bare name unique across namespaces; None if unknown.

        Raises Ambiguous for a bare name several namespaces use.
        """
        if "/" in model:
            namespace, _, name = model.partition("/")
            return self.routes.get((namespace, name))
        found = [r for r in self.routes.values() if r.name == model]
        if len(found) > 1:
            raise Ambiguous(model, sorted(r.namespace for r in found))
        return found[0] if found else None

    def public_id(self, route: Route) -> str:
        """The id /v1/models lists: the bare name where it is unique, else namespace/name."""
        clash = sum(1 for r in self.routes.values() if r.name == route.name) > 1
        return route.label if clash else route.name
