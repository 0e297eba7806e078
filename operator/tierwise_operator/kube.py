"""A small async facade over the `kubernetes` client for the few resources tierwise touches.

Resource paths are fixed (no discovery round-trips); children are written with
server-side apply under one field manager, so re-applying is idempotent and a
restart never duplicates anything. The blocking client runs in worker threads.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


DEPLOYMENTS = Kind("apps", "v1", "deployments", True)
SERVICES = Kind("", "v1", "services", True)
PDBS = Kind("policy", "v1", "poddisruptionbudgets", True)
JOBS = Kind("batch", "v1", "jobs", True)
PODS = Kind("", "v1", "pods", True)
CONFIGMAPS = Kind("", "v1", "configmaps", True)
NODES = Kind("", "v1", "nodes", False)
INFERENCE_MODELS = Kind("tierwise.dev", "v1alpha1", "inferencemodels", True)
TIER_CLASSES = Kind("tierwise.dev", "v1alpha1", "tierclasses", False)
EVENTS = Kind("", "v1", "events", True)

_BY_KIND = {
    ("apps/v1", "Deployment"): DEPLOYMENTS,
    ("v1", "Service"): SERVICES,
    ("policy/v1", "PodDisruptionBudget"): PDBS,
    ("batch/v1", "Job"): JOBS,
    ("v1", "ConfigMap"): CONFIGMAPS,
}


def kind_of(manifest: Manifest) -> Kind:
    key = (manifest["apiVersion"], manifest["kind"])
    if key not in _BY_KIND:
        raise ValueError(f"tierwise does not manage {key[1]} ({key[0]})")
    return _BY_KIND[key]


class KubeError(RuntimeError):
    """An API call failed; `status` is the HTTP status (0 when the server was unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


def api_client(host: str | None = None) -> k8s.ApiClient:
    """In-cluster credentials, else the kubeconfig; `host` alone for a local API emulator."""
    if host:
        configuration = k8s.Configuration(host=host)
        return k8s.ApiClient(configuration)
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()


class Kube:
    def __init__(self, client: k8s.ApiClient, field_manager: str) -> None:
        self._client = client
        self.field_manager = field_manager

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        request = self._client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(*request, _request_timeout=30)
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise KubeError(exc.status or 0, _reason(exc.body, exc.reason)) from exc
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, DNS, TLS
            raise KubeError(0, f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status < 300:
            raise KubeError(response.status, _reason(response.data, response.reason))
        return json.loads(response.data) if response.data else None

    async def _run(self, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._call, *args, **kwargs)

    async def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply; tierwise owns every field it sets (force resolves conflicts)."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        path = kind.path(meta.get("namespace"), meta["name"])
        query = [("fieldManager", self.field_manager), ("force", "true")]
        result: Manifest = await self._run(
            "PATCH", path, json.dumps(manifest), query, "application/apply-patch+yaml"
        )
        return result

    async def create_if_absent(self, manifest: Manifest) -> bool:
        """Create; True if created, False if it already existed (Jobs are immutable)."""
        kind = kind_of(manifest)
        try:
            await self._run("POST", kind.path(manifest["metadata"].get("namespace")), manifest)
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def post_event(
        self, regarding: Manifest, type_: str, reason: str, message: str, component: str
    ) -> None:
        """A core/v1 Event about `regarding`, as `kubectl describe` shows them."""
        meta = regarding["metadata"]
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": regarding.get("apiVersion"),
                "kind": regarding.get("kind"),
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._run("POST", EVENTS.path(namespace), event)

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Manifest | None:
        try:
            found: Manifest = await self._run("GET", kind.path(namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def list(
        self, kind: Kind, namespace: str | None = None, selector: str | None = None
    ) -> list[Manifest]:
        query = [("labelSelector", selector)] if selector else []
        result = await self._run("GET", kind.path(namespace), None, query)
        items: list[Manifest] = result.get("items", [])
        return items

    async def delete(
        self, kind: Kind, name: str, namespace: str | None = None, uid: str | None = None
    ) -> bool:
        """Delete; with `uid`, only the object that has it (the API checks, no race)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self._run("DELETE", kind.path(namespace, name), body)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any]
    ) -> Manifest:
        path = kind.path(namespace, name) + "/status"
        result: Manifest = await self._run(
            "PATCH", path, {"status": status}, None, "application/merge-patch+json"
        )
        return result


def _reason(data: Any, reason: Any) -> str:
    try:
        body = json.loads(data or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or reason or "error")
