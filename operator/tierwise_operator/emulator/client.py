"""A small async HTTP client for the emulator (or any API server reachable without auth)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .registry import Registry, ResourceType

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class ClientError(Exception):
    """A non-2xx answer: the status code and the server's Status body."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


class Client:
    """create/get/list/patch/apply/delete/wait_for over HTTP; resources named as kubectl does."""

    def __init__(
        self, url: str, registry: Registry, *, user_agent: str = "tierwise-client"
    ) -> None:
        self.url = url.rstrip("/")
        self.registry = registry
        self._session = aiohttp.ClientSession(headers={"User-Agent": user_agent})

    async def close(self) -> None:
        await self._session.close()

    def resource(self, name: str | ResourceType) -> ResourceType:
        return name if isinstance(name, ResourceType) else self.registry.lookup(name)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        kwargs: dict[str, Any] = {"params": params or {}, "headers": headers or {}}
        if data is not None:
            kwargs["data"] = data
            kwargs["headers"].setdefault("Content-Type", "application/json")
        async with self._session.request(method, self.url + path, **kwargs) as response:
            text = await response.text()
            payload = json.loads(text) if text else None
            if response.status >= 300:
                raise ClientError(response.status, payload)
            return payload

    async def create(
        self, resource: str | ResourceType, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        rtype = self.resource(resource)
        ns = namespace or body.get("metadata", {}).get("namespace") or "default"
        created: dict[str, Any] = await self.request("POST", rtype.path(ns), body=body)
        return created

    async def get(
        self, resource: str | ResourceType, name: str, namespace: str | None = "default"
    ) -> dict[str, Any]:
        found: dict[str, Any] = await self.request(
            "GET", self.resource(resource).path(namespace, name)
        )
        return found

    async def list(
        self,
        resource: str | ResourceType,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"labelSelector": labels, "fieldSelector": fields}.items() if v}
        body = await self.request("GET", self.resource(resource).path(namespace), params=params)
        items: list[dict[str, Any]] = body["items"]
        return items

    async def patch(
        self,
        resource: str | ResourceType,
        name: str,
        patch: Any,
        namespace: str | None = "default",
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        path = self.resource(resource).path(namespace, name)
        path += f"/{subresource}" if subresource else ""
        params = {"fieldManager": field_manager} if field_manager else {}
        if force:
            params["force"] = "true"
        headers = {"Content-Type": PATCH_TYPES[patch_type]}
        patched: dict[str, Any] = await self.request(
            "PATCH", path, body=patch, params=params, headers=headers
        )
        return patched

    async def apply(
        self,
        body: dict[str, Any],
        *,
        field_manager: str,
        force: bool = False,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply of a manifest (its apiVersion and kind pick the resource)."""
        rtype = self.registry.by_kind(body["apiVersion"], body["kind"])
        if rtype is None:
            raise ClientError(404, f"no resource serves {body['apiVersion']} {body['kind']}")
        ns = namespace or body.get("metadata", {}).get("namespace") or "default"
        return await self.patch(
            rtype,
            body["metadata"]["name"],
            body,
            ns,
            patch_type="apply",
            field_manager=field_manager,
            force=force,
        )

    async def replace(
        self,
        resource: str | ResourceType,
        body: dict[str, Any],
        namespace: str | None = "default",
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = self.resource(resource).path(namespace, body["metadata"]["name"])
        path += f"/{subresource}" if subresource else ""
        replaced: dict[str, Any] = await self.request("PUT", path, body=body)
        return replaced

    async def delete(
        self,
        resource: str | ResourceType,
        name: str,
        namespace: str | None = "default",
        *,
        propagation: str | None = None,
    ) -> dict[str, Any]:
        params = {"propagationPolicy": propagation} if propagation else {}
        path = self.resource(resource).path(namespace, name)
        deleted: dict[str, Any] = await self.request("DELETE", path, params=params)
        return deleted

    async def wait_for(
        self,
        resource: str | ResourceType,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        namespace: str | None = "default",
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Poll until the object exists and `predicate(obj)` holds; TimeoutError tells the last."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                found = last = await self.get(resource, name, namespace)
                if predicate(found):
                    return found
            except ClientError as exc:
                if exc.status != 404:
                    raise
                last = exc
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{resource} {namespace}/{name} never matched; last seen: {last!r}")

    async def wait_gone(
        self,
        resource: str | ResourceType,
        name: str,
        namespace: str | None = "default",
        *,
        timeout: float = 10.0,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self.get(resource, name, namespace)
            except ClientError as exc:
                if exc.status == 404:
                    return
                raise
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{resource} {namespace}/{name} still exists after {timeout}s")


def kubeconfig(url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig with one context for a server that needs no credentials."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tierwise-emulator", "cluster": {"server": url.rstrip("/")}}],
        "users": [{"name": "tierwise-emulator", "user": {}}],
        "contexts": [
            {
                "name": "tierwise-emulator",
                "context": {
                    "cluster": "tierwise-emulator",
                    "user": "tierwise-emulator",
                    "namespace": namespace,
                },
            }
        ],
        "current-context": "tierwise-emulator",
    }


def write_kubeconfig(url: str, path: Path, namespace: str = "default") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(url, namespace), sort_keys=False))
    return path
