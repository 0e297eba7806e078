"""The HTTP face of the emulator: kmock's Kubernetes scaffold serving the `ApiServer`.

kmock 0.8 supplies the server, the request parsing, Status error bodies and
its reaction DSL (so a test can still inject a fault with
`emulator["patch", "/apis/..."] << 500`). Its own object tracking
(`KubernetesEmulator`) merges every write blindly and its discovery mislabels
the core group, so this subclass replaces both: discovery and OpenAPI come
from `discovery`, every resource URL goes to `ApiServer`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from kmock import KubernetesScaffold, Reaction, Request
from kmock._internal import parsing
from kmock._internal.rendering import Response

from . import discovery, errors, patching, routing, tables, watching
from .apiserver import ApiServer
from .registry import ResourceType
from .selectors import SelectorError

_JSON = {"Content-Type": "application/json"}


def _tolerate_namespace_collections() -> None:
    """kmock 0.8's request parser raises on `/api/v1/namespaces`; routing here does not need it."""
    original = parsing.parse_path
    if getattr(original, "tolerant", False):
        return

    def parse_path(path: str) -> parsing.ParsedPath:
        try:
            return original(path)
        except ValueError:
            return parsing.ParsedPath()

    parse_path.tolerant = True  # type: ignore[attr-defined]
    parsing.parse_path = parse_path


_tolerate_namespace_collections()


def _reply(status: int, payload: Any) -> Response:
    return Response(status=status, headers=_JSON, payload=payload)


class Emulator(KubernetesScaffold):
    """Serves discovery, OpenAPI v3 stubs and every resource verb of an `ApiServer`."""

    def __init__(self, api: ApiServer, *, keep_requests: int = 200) -> None:
        self.api = api
        self.keep_requests = keep_requests
        self.served: Counter[tuple[str, str]] = Counter()
        """Resource requests served, by (method, plural[/subresource]): what clients cost."""
        super().__init__()

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback["get", re.compile(r"/openapi/v3(/.*)?")] << self._serve_openapi
        reaction = self.fallback[self._is_resource_url] << self._serve_resource
        assert isinstance(reaction, Reaction)
        self._objects = reaction
        self._own_reactions = list(self._payloads)

    def _is_resource_url(self, request: Request) -> bool:
        return routing.parse(request.url.path, self.api.registry) is not None

    async def _handle(self, request: Request) -> Any:
        """Serve directly unless a test added reactions: kmock's matching scans past requests."""
        try:
            route = self._route(request) if self._payloads == self._own_reactions else None
            if route is None:
                return await super()._handle(request)
            reply = await route(request)
            response = reply if isinstance(reply, Response) else _reply(200, reply)
            return await response(request)
        finally:
            self._forget_old_requests()

    def _route(self, request: Request) -> Callable[[Request], Awaitable[Any]] | None:
        """The handler the fallback reactions would pick for this request."""
        if self._is_resource_url(request):
            return self._serve_resource
        if str(request.method.value).upper() != "GET":
            return None
        parts = request.url.path.strip("/").split("/")
        exact = {"version": self._serve_server_version, "api": self._serve_api,
                 "apis": self._serve_apis, "": self._serve_root}  # fmt: skip
        if len(parts) == 1:
            return exact.get(parts[0])
        if parts[0] == "openapi" and parts[1] == "v3":
            return self._serve_openapi
        if parts[0] == "apis":
            return self._serve_group if len(parts) == 2 else self._serve_version
        return self._serve_version if parts[0] == "api" and len(parts) == 2 else None

    def _forget_old_requests(self) -> None:
        """kmock keeps every request for assertions; a long-running emulator keeps the latest."""
        logs: list[list[Any]] = [self._requests, self._objects._requests, *self._errors]
        for log in logs:
            if len(log) > self.keep_requests:
                del log[: len(log) - self.keep_requests // 2]

    # -- discovery (kmock's own versions label the core group "/v1")

    async def _serve_root(self, request: Request) -> Any:
        paths = ["/api", "/api/v1", "/apis", "/openapi/v3", "/version"]
        for group, versions in self.api.registry.groups().items():
            if group:
                paths += [f"/apis/{group}", *(f"/apis/{group}/{v}" for v in versions)]
        return {"paths": sorted(paths)}

    async def _serve_server_version(self, request: Request) -> Any:
        return discovery.VERSION

    async def _serve_api(self, request: Request) -> Any:
        return discovery.api_versions()

    async def _serve_apis(self, request: Request) -> Any:
        return discovery.api_group_list(self.api.registry)

    async def _serve_group(self, request: Request) -> Any:
        group = request.url.path.strip("/").split("/")[1]
        return discovery.api_group(self.api.registry, group) or _missing(request)

    async def _serve_version(self, request: Request) -> Any:
        parts = request.url.path.strip("/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        found = discovery.api_resource_list(self.api.registry, group, version)
        return found or _missing(request)

    async def _serve_openapi(self, request: Request) -> Any:
        parts = request.url.path.strip("/").split("/")[2:]
        if not parts:
            return discovery.openapi_root(self.api.registry)
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        found = discovery.openapi_group_version(self.api.registry, group, version)
        return found or _missing(request)

    # -- resources

    async def _serve_resource(self, request: Request) -> Response:
        target = routing.parse(request.url.path, self.api.registry)
        assert target is not None  # the reaction's filter checked it
        rtype = self.api.registry.get(target.group, target.version, target.plural)
        if rtype is None or (target.namespace and not rtype.namespaced):
            raise errors.unknown_resource(request.url.path)
        if target.subresource and target.subresource not in rtype.subresources:
            raise errors.unknown_resource(request.url.path)
        method = str(request.method.value).upper()
        self.served[method, "/".join(filter(None, (target.plural, target.subresource)))] += 1
        try:
            if target.name is None:
                return await self._collection(request, rtype, target, method)
            return self._item(request, rtype, target, method)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from exc

    async def _collection(
        self, request: Request, rtype: ResourceType, target: routing.Target, method: str
    ) -> Response:
        params = dict(request.params)
        if method == "GET" and (target.watch or params.get("watch") in {"true", "1"}):
            return self._watch(request, rtype, target)
        if method == "GET":
            items = self.api.list(
                rtype,
                target.namespace,
                label_selector=params.get("labelSelector"),
                field_selector=params.get("fieldSelector"),
            )
            return _reply(200, self._list_body(request, rtype, items))
        if method == "POST":
            obj = self.api.create(
                rtype,
                _body(request),
                target.namespace,
                manager=_manager(request),
                strict=_strict(params),
                dry_run=_dry_run(params),
            )
            return _reply(201, obj)
        if method == "DELETE":
            items = self.api.list(
                rtype,
                target.namespace,
                label_selector=params.get("labelSelector"),
                field_selector=params.get("fieldSelector"),
            )
            for obj in items:
                meta = obj["metadata"]
                self.api.delete(
                    rtype, meta.get("namespace"), meta["name"], **_delete_options(request)
                )
            return _reply(200, self._list_body(request, rtype, items))
        raise errors.method_not_allowed(f"{method} is not supported on a collection")

    def _item(
        self, request: Request, rtype: ResourceType, target: routing.Target, method: str
    ) -> Response:
        params = dict(request.params)
        name, namespace, sub = target.name or "", target.namespace, target.subresource
        if method == "GET":
            obj = self.api.get(rtype, namespace, name)
            if tables.wants_table(request.headers.get("Accept", "")):
                return _reply(
                    200,
                    tables.table(
                        rtype,
                        [obj],
                        resource_version=obj["metadata"]["resourceVersion"],
                        include_object=params.get("includeObject", "Metadata"),
                    ),
                )
            return _reply(200, obj)
        if method == "PUT":
            obj = self.api.update(
                rtype,
                _body(request),
                namespace,
                name,
                subresource=sub,
                manager=_manager(request),
                strict=_strict(params),
                dry_run=_dry_run(params),
            )
            return _reply(200, obj)
        if method == "PATCH":
            return self._patch(request, rtype, target, params)
        if method == "DELETE":
            _refuse_dry_run(params)
            return _reply(200, self.api.delete(rtype, namespace, name, **_delete_options(request)))
        raise errors.method_not_allowed(f"{method} is not supported on an object")

    def _patch(
        self, request: Request, rtype: ResourceType, target: routing.Target, params: dict[str, str]
    ) -> Response:
        kind = request.headers.get("Content-Type", "").split(";")[0].strip()
        name = target.name or ""
        existed = (
            kind != patching.APPLY
            or self.api.store.get(rtype, target.namespace if rtype.namespaced else None, name)
            is not None
        )
        obj = self.api.patch(
            rtype,
            target.namespace,
            name,
            kind,
            _body(request, yaml_ok=kind == patching.APPLY),
            subresource=target.subresource,
            manager=_manager(request, kind == patching.APPLY),
            force=params.get("force") == "true",
            strict=_strict(params),
            dry_run=_dry_run(params),
        )
        return _reply(200 if existed else 201, obj)

    def _list_body(self, request: Request, rtype: ResourceType, items: list[Any]) -> dict[str, Any]:
        version = self.api.store.resource_version
        if tables.wants_table(request.headers.get("Accept", "")):
            include = dict(request.params).get("includeObject", "Metadata")
            return tables.table(rtype, items, resource_version=version, include_object=include)
        return {
            "apiVersion": rtype.api_version,
            "kind": f"{rtype.kind}List",
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _watch(self, request: Request, rtype: ResourceType, target: routing.Target) -> Response:
        watch = watching.WatchRequest(rtype, target.namespace, dict(request.params))
        raw = request._raw_request
        transport = raw.transport if raw is not None else None

        def closed() -> bool:
            return transport is None or transport.is_closing()

        table = tables.wants_table(request.headers.get("Accept", ""))
        return _reply(200, watching.stream(self.api, watch, closed, table))


def _missing(request: Request) -> Any:
    raise errors.unknown_resource(request.url.path)


def _body(request: Request, *, yaml_ok: bool = False) -> Any:
    text = request.text
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        if not yaml_ok:
            raise errors.bad_request("the request body is not valid JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"the request body is not valid YAML: {exc}") from None


def _manager(request: Request, required: bool = False) -> str:
    """The field manager: the query parameter, else the user agent's product, as the server does."""
    given = dict(request.params).get("fieldManager", "")
    if given or required:
        return given
    agent = request.headers.get("User-Agent", "")
    return agent.split("/")[0].strip() or "unknown"


def _strict(params: dict[str, str]) -> bool:
    return params.get("fieldValidation", "").lower() == "strict"


def _dry_run(params: dict[str, str]) -> bool:
    """`dryRun=All` validates a write and stores nothing; All is the only value the API knows."""
    value = params.get("dryRun")
    if value in (None, ""):
        return False
    if value != "All":
        raise errors.bad_request(f'unsupported dryRun value "{value}": only "All" is supported')
    return True


def _refuse_dry_run(params: dict[str, str]) -> None:
    if params.get("dryRun"):
        raise errors.bad_request("dryRun is not supported by the tierwise API emulator on DELETE")


def _delete_options(request: Request) -> dict[str, Any]:
    params = dict(request.params)
    body = _body(request) if request.text.strip() else {}
    body = body if isinstance(body, dict) else {}
    grace = params.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
    orphan = str(params.get("orphanDependents", body.get("orphanDependents", ""))).lower()
    return {
        "propagation": params.get("propagationPolicy")
        or body.get("propagationPolicy")
        or ("Orphan" if orphan == "true" else None),
        "grace_period": int(grace) if grace is not None else None,
        "preconditions": body.get("preconditions"),
    }
