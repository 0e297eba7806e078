"""The gateway's own small Kubernetes client: list, watch and merge-patch over aiohttp.

Credentials come from the kubeconfig or the pod's service account, read
through the `kubernetes` package's loaders, so the same flags work as for
`tierwise run`; `--server URL` talks to an unauthenticated API (the emulator).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes import client as k8s
from kubernetes import config as k8s_config

MODELS_PATH = "/apis/tierwise.dev/v1alpha1"
PODS_PATH = "/api/v1"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass
class ApiConfig:
    server: str
    authorization: str | None = None
    ssl_context: ssl.SSLContext | bool = True
    extra: dict[str, str] = field(default_factory=dict)
    source: Any = None
    """The kubernetes client's Configuration the credentials come from, if any."""

    @classmethod
    def load(cls, server: str | None = None, kubeconfig: str | None = None) -> ApiConfig:
        if server:
            return cls(server.rstrip("/"))
        cfg = k8s.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
        context: ssl.SSLContext | bool = True
        if not cfg.verify_ssl:
            context = False
        elif cfg.ssl_ca_cert or cfg.cert_file:
            context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
            if cfg.cert_file:
                context.load_cert_chain(cfg.cert_file, cfg.key_file)
        return cls(str(cfg.host).rstrip("/"), None, context, source=cfg)

    def headers(self) -> dict[str, str]:
        out = dict(self.extra)
        # Asked each time: in a pod the service account token is rotated under us.
        token = self.authorization
        if self.source is not None:
            token = self.source.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            out["Authorization"] = token
        return out


class KubeApi:
    """Lists, watches and patches through one session."""

    def __init__(self, config: ApiConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    def _url(self, path: str) -> str:
        return self.config.server + path

    async def list(self, path: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
        async with self.session.get(
            self._url(path), params=params, headers=self.config.headers(),
            ssl=self.config.ssl_context,
        ) as resp:  # fmt: skip
            if resp.status != 200:
                raise ApiError(resp.status, (await resp.text())[:300])
            body = await resp.json()
        return list(body.get("items") or []), str(body["metadata"].get("resourceVersion", ""))

    async def watch(
        self, path: str, params: dict[str, str], resource_version: str
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events after `resource_version`, until the server ends the stream."""
        query = {
            **params, "watch": "true", "resourceVersion": resource_version,
            "allowWatchBookmarks": "true", "timeoutSeconds": "300",
        }  # fmt: skip
        timeout = aiohttp.ClientTimeout(total=None, sock_read=330)
        async with self.session.get(
            self._url(path), params=query, headers=self.config.headers(),
            ssl=self.config.ssl_context, timeout=timeout,
        ) as resp:  # fmt: skip
            if resp.status != 200:
                raise ApiError(resp.status, (await resp.text())[:300])
            buffer = b""
            # Lines, read without a line-length limit: an object's status can be large.
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> None:
        headers = {**self.config.headers(), "Content-Type": "application/merge-patch+json"}
        async with self.session.patch(
            self._url(path), data=json.dumps(body), headers=headers, ssl=self.config.ssl_context
        ) as resp:
            if resp.status >= 300:
                raise ApiError(resp.status, (await resp.text())[:300])

    async def patch_model(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        await self.merge_patch(f"{MODELS_PATH}/namespaces/{namespace}/inferencemodels/{name}", body)
