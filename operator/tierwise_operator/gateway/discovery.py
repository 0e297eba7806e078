"""Ready endpoints from the Kubernetes API: InferenceModels and their serving pods, watched.

The gateway lists and then watches (never polls per request) the
InferenceModels it may see and the runtime pods, and keeps the Directory
current: a pod counts while it is Ready, has an IP and is not terminating.
Pods rather than EndpointSlices: the operator already labels them per model,
the API emulator serves them, and readiness is the same signal the slices
carry; a terminating pod leaves at once, and requests it has in flight finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..children.common import COMPONENT_LABEL, MODEL_LABEL
from ..children.serving import COMPONENT
from .endpoints import Directory, ModelKey
from .kubeapi import MODELS_PATH, PODS_PATH, ApiError, KubeApi

log = logging.getLogger(__name__)

POD_SELECTOR = f"{COMPONENT_LABEL}={COMPONENT},{MODEL_LABEL}"
DEFAULT_PORT = 8000

Obj = dict[str, Any]


def pod_endpoint(pod: Obj) -> tuple[ModelKey, str | None] | None:
    """(model, base URL) for a serving pod, the URL None while it is not ready; None for
    pods that serve no model."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    model = labels.get(MODEL_LABEL)
    if not model or labels.get(COMPONENT_LABEL) != COMPONENT:
        return None
    key = (str(meta.get("namespace") or "default"), str(model))
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    ip = status.get("podIP")
    if not ready or not ip or meta.get("deletionTimestamp"):
        return key, None
    return key, f"http://{ip}:{_port(pod)}"


def _port(pod: Obj) -> int:
    containers = (pod.get("spec") or {}).get("containers") or []
    ports = [p for c in containers for p in c.get("ports") or []]
    named = [p for p in ports if p.get("name") == "http"]
    chosen = (named or ports or [{"containerPort": DEFAULT_PORT}])[0]
    return int(chosen["containerPort"])


class PodIndex:
    """Serving pods by (namespace, name); pushes each model's ready set to the Directory."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.pods: dict[tuple[str, str], tuple[ModelKey, str | None]] = {}

    def _publish(self, keys: Iterable[ModelKey]) -> None:
        for key in set(keys):
            urls = {url for model, url in self.pods.values() if model == key and url}
            self.directory.set_endpoints(key, urls)

    def reset(self, namespace: str | None, pods: list[Obj]) -> None:
        """A fresh list for one namespace (None: all) replaces what was known of it."""
        gone = [k for k in self.pods if namespace is None or k[0] == namespace]
        touched = [self.pods.pop(k)[0] for k in gone]
        for pod in pods:
            touched += self._put(pod)
        self._publish(touched)

    def event(self, kind: str, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        name = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        touched = [self.pods.pop(name)[0]] if name in self.pods else []
        if kind != "DELETED":
            touched += self._put(pod)
        self._publish(touched)

    def _put(self, pod: Obj) -> list[ModelKey]:
        found = pod_endpoint(pod)
        if found is None:
            return []
        meta = pod["metadata"]
        self.pods[(str(meta.get("namespace") or "default"), str(meta["name"]))] = found
        return [found[0]]


class ModelIndex:
    """InferenceModels, as Directory routes."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def reset(self, namespace: str | None, models: list[Obj]) -> None:
        keep = {(m["metadata"].get("namespace", "default"), m["metadata"]["name"]) for m in models}
        for key in list(self.directory.routes):
            if (namespace is None or key[0] == namespace) and key not in keep:
                self.directory.remove_model(*key)
        for key in keep:
            self.directory.add_model(*key)

    def event(self, kind: str, model: Obj) -> None:
        meta = model["metadata"]
        key = (str(meta.get("namespace") or "default"), str(meta["name"]))
        if kind == "DELETED":
            self.directory.remove_model(*key)
        else:
            self.directory.add_model(*key)


Reset = Callable[[str | None, list[Obj]], None]
OnEvent = Callable[[str, Obj], None]


class Watcher:
    """List-then-watch loops for models and pods in each namespace (or the whole cluster)."""

    def __init__(self, api: KubeApi, directory: Directory, namespaces: tuple[str, ...] = ()):
        self.api = api
        self.models = ModelIndex(directory)
        self.pods = PodIndex(directory)
        self.scopes: tuple[str | None, ...] = namespaces or (None,)
        self._synced: set[tuple[str, str | None]] = set()

    @property
    def synced(self) -> bool:
        return len(self._synced) == 2 * len(self.scopes)

    async def run(self) -> None:
        loops = []
        for scope in self.scopes:
            ns = f"/namespaces/{scope}" if scope else ""
            models, pods = self.models, self.pods
            loops.append(
                self._loop("models", scope, f"{MODELS_PATH}{ns}/inferencemodels", {},
                           reset=models.reset, on_event=models.event)
            )  # fmt: skip
            loops.append(
                self._loop("pods", scope, f"{PODS_PATH}{ns}/pods", {"labelSelector": POD_SELECTOR},
                           reset=pods.reset, on_event=pods.event)
            )  # fmt: skip
        await asyncio.gather(*loops)

    async def _loop(
        self, what: str, scope: str | None, path: str, params: dict[str, str],
        *, reset: Reset, on_event: OnEvent,
    ) -> None:  # fmt: skip
        version: str | None = None
        backoff = 0.5
        while True:
            try:
                if version is None:
                    items, version = await self.api.list(path, params)
                    reset(scope, items)
                    self._synced.add((what, scope))
                async for event in self.api.watch(path, params, version):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        version = None  # 410 Gone and the like: list again
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        on_event(kind, obj)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API may heal: never let the watch die
                log.warning("watching %s in %s: %s; again in %.1fs", what, scope or "all", exc,
                            backoff)  # fmt: skip
                if isinstance(exc, ApiError) and exc.status == 410:
                    version = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
