"""The gateway's HTTP application: the OpenAI routes, /v1/models, probes and /metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .config import GatewaySettings
from .dispatch import Dispatcher, Forward
from .endpoints import Ambiguous, Directory
from .errors import openai_error
from .keys import Grant, KeyRing, forbidden
from .metrics import GatewayMetrics
from .waking import DemandSignal, NoSignal

log = logging.getLogger(__name__)

ROUTES = ("/v1/embeddings", "/v1/completions", "/v1/chat/completions")
#: Request headers worth passing on to a replica (the key stays at the gateway).
FORWARDED = ("Content-Type", "Accept", "X-Request-Id")

DIRECTORY = web.AppKey("directory", Directory)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
KEYS = web.AppKey("keys", KeyRing)
METRICS = web.AppKey("metrics", GatewayMetrics)
READY: web.AppKey[Callable[[], bool]] = web.AppKey("ready")


def _json_body(raw: bytes) -> dict[str, Any] | web.Response:
    try:
        doc = json.loads(raw)
    except ValueError:
        return openai_error(400, "the body is not valid JSON", "invalid_json")
    if not isinstance(doc, dict):
        return openai_error(400, "the body must be a JSON object", "invalid_type")
    return doc


def _grant(request: web.Request) -> Grant | web.Response | None:
    return request.app[KEYS].grant(request.headers.get("Authorization"))


async def handle_openai(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    doc = _json_body(raw)
    if isinstance(doc, web.Response):
        return doc
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        return openai_error(400, "model is required (a string)", "invalid_model", param="model")
    grant = _grant(request)
    if isinstance(grant, web.Response):
        return grant
    try:
        route = request.app[DIRECTORY].resolve(model)
    except Ambiguous as exc:
        names = ", ".join(f"{ns}/{exc.name}" for ns in exc.namespaces)
        return openai_error(
            400, f"several namespaces have {exc.name!r}: use one of {names}", "model_ambiguous",
            param="model",
        )  # fmt: skip
    if route is None:
        if not request.app[READY]():
            # Not listed yet: the model may well exist; a 404 would be a wrong answer.
            return openai_error(503, "the gateway is starting; retry", "gateway_starting",
                                retry_after=1)  # fmt: skip
        return openai_error(
            404, f"the model {model!r} does not exist", "model_not_found", param="model"
        )
    if grant is not None and not grant.allows(route.label):
        return forbidden(grant, route.label)
    if model != route.name:
        # A replica knows itself by its bare name.
        raw = json.dumps({**doc, "model": route.name}).encode()
    headers = {h: request.headers[h] for h in FORWARDED if h in request.headers}
    headers.setdefault("Content-Type", "application/json")
    response = await request.app[DISPATCHER].serve(
        route, Forward(request.path, raw, headers), request
    )
    request.app[METRICS].requests.labels(
        route.namespace, route.name, request.path, str(response.status)
    ).inc()
    return response


async def handle_models(request: web.Request) -> web.Response:
    grant = _grant(request)
    if isinstance(grant, web.Response):
        return grant
    directory = request.app[DIRECTORY]
    data = [
        {
            "id": directory.public_id(route),
            "object": "model",
            "created": 0,
            "owned_by": route.namespace,
            "namespace": route.namespace,
            "name": route.name,
            "ready_replicas": len(route.endpoints),
        }
        for route in sorted(directory.routes.values(), key=lambda r: r.key)
        if grant is None or grant.allows(route.label)
    ]
    return web.json_response({"object": "list", "data": data})


async def handle_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def handle_readyz(request: web.Request) -> web.Response:
    if request.app[READY]():
        return web.Response(text="ok")
    return web.Response(status=503, text="the model and pod watches have not synced yet")


async def handle_metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    for route in list(request.app[DIRECTORY].routes.values()):
        metrics.ready_endpoints.labels(route.namespace, route.name).set(len(route.endpoints))
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """A bug answers 500 in the OpenAI shape instead of aiohttp's HTML page."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status == 413:
            return openai_error(413, "the request body is too large", "request_too_large")
        if exc.status in (404, 405):
            return openai_error(
                exc.status, f"no route {request.method} {request.path}", "not_found"
            )
        raise
    except Exception:
        log.exception("unexpected error serving %s", request.path)
        return openai_error(500, "the gateway failed on this request", "internal_error")


def create_app(
    directory: Directory,
    settings: GatewaySettings | None = None,
    *,
    keys: KeyRing | None = None,
    metrics: GatewayMetrics | None = None,
    signal: DemandSignal | None = None,
    ready: Callable[[], bool] = lambda: True,
) -> web.Application:
    settings = settings or GatewaySettings()
    app = web.Application(middlewares=[errors_middleware], client_max_size=settings.max_body_bytes)
    app[DIRECTORY] = directory
    app[KEYS] = keys or KeyRing(None)
    app[METRICS] = metrics or GatewayMetrics()
    app[READY] = ready
    for path in ROUTES:
        app.router.add_post(path, handle_openai)
    app.router.add_get("/v1/models", handle_models)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.router.add_get("/metrics", handle_metrics)

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout_s, sock_read=settings.read_timeout_s
        )
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60)
        # No cookie jar: a proxy has no cookies of its own to send, and filtering costs.
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        ) as session:  # fmt: skip
            app[DISPATCHER] = Dispatcher(session, settings, app[METRICS], signal or NoSignal())
            yield

    app.cleanup_ctx.append(client_session)
    return app
