"""The HTTP server: the aiohttp application, its probes and middleware, and the serve loop.

Shutdown (SIGTERM or SIGINT): /readyz turns 503 and new /v1 requests are
refused with 503 (Connection: close) while requests in flight finish, up to
`drain_timeout_s`; then completions still decoding end with an error (an SSE
error event for streams), the listener closes and the process exits, 0 when
everything in flight completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST

from .adapters.errors import AdapterError
from .adapters.listing import watch_adapter_list
from .adapters.manager import AdapterSpec
from .api_errors import ApiError, error_middleware, unavailable
from .appkeys import BUDGET, CONFIG, LIFECYCLE
from .lifecycle import EngineLoader, Lifecycle, Phase
from .metrics import RuntimeMetrics
from .openai_routes import BODY_ROUTES
from .openai_routes import routes as openai_routes
from .request_body import BODY, BodyBudget, claim, read_body
from .serve_config import ServeConfig

log = logging.getLogger(__name__)

#: Routes labelled by path in metrics; anything else is `other`, so scanners cannot
#: blow up the label cardinality.
KNOWN_ROUTES = frozenset(
    {
        "/v1/embeddings",
        "/v1/completions",
        "/v1/chat/completions",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    }
)
#: Status recorded when the client went away before the answer (nginx's convention).
CLIENT_CLOSED = 499
#: What Kubernetes probes and Prometheus reach without the API key.
OPEN_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
#: How long completions cut by the drain get to write their error event.
CUT_GRACE_S = 2.0

probe_routes = web.RouteTableDef()


@probe_routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers (loading counts as alive)."""
    return web.json_response({"status": "ok"})


@probe_routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 only once the model is loaded and warmed up, not while draining, and not while
    an engine call runs past its limit (the body then says why)."""
    life = request.app[LIFECYCLE]
    if life.phase is Phase.READY and life.stalled is not None:
        return web.json_response({"status": "stalled", "reason": life.stalled}, status=503)
    return web.json_response({"status": str(life.phase)}, status=200 if life.ready else 503)


@probe_routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[LIFECYCLE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts every request by route and status and times it to its last byte."""
    metrics = request.app[LIFECYCLE].metrics
    route = request.path if request.path in KNOWN_ROUTES else "other"
    started = time.perf_counter()
    status = CLIENT_CLOSED
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # below 400: redirects and the like pass through
        status = exc.status
        raise
    finally:
        metrics.requests.labels(route=route, status=str(status)).inc()
        metrics.duration.labels(route=route).observe(time.perf_counter() - started)


@web.middleware
async def gate_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keeps /v1 requests out until ready and while draining; counts those let in."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    life = request.app[LIFECYCLE]
    if life.phase is not Phase.READY:
        response = _not_ready(life.phase, request.app[CONFIG].retry_after_s).response()
        if life.phase is Phase.DRAINING:
            response.force_close()
        return response
    life.request_started()
    try:
        return await handler(request)
    finally:
        life.request_finished()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With an API key configured, everything but the probes and /metrics needs it."""
    key = request.app[CONFIG].api_key
    if key is None or request.path in OPEN_ROUTES:
        return await handler(request)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), key.encode()
    ):
        response = ApiError(
            401,
            "missing or incorrect API key: send Authorization: Bearer <key>",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        ).response()
        response.force_close()  # its body, if any, is never read
        return response
    return await handler(request)


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reads the body of a /v1 POST within the bytes-in-flight budget and the body timeout;
    the bytes count against the budget until the answer ends."""
    if request.method != "POST" or request.path not in BODY_ROUTES:
        return await handler(request)
    config = request.app[CONFIG]
    with claim(request.app[BUDGET], config.retry_after_s) as held:
        try:
            request[BODY] = await read_body(
                request, held, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s
            )
        except ApiError as exc:
            response = exc.response()
            response.force_close()  # the rest of the body is not worth reading
            return response
        return await handler(request)


def _not_ready(phase: Phase, retry_after_s: int) -> ApiError:
    if phase is Phase.DRAINING:
        return unavailable("the server is shutting down; retry", "shutting_down", retry_after_s)
    if phase is Phase.FAILED:
        return ApiError(503, "the model failed to load", code="model_failed")
    return unavailable(f"the model is {phase}; retry shortly", "model_loading", retry_after_s)


def create_app(
    load: EngineLoader, config: ServeConfig, metrics: RuntimeMetrics | None = None
) -> web.Application:
    """The application; loading and warm-up start in the background when it starts."""
    app = web.Application(
        middlewares=[
            metrics_middleware, error_middleware, auth_middleware, gate_middleware,
            body_middleware,
        ],
        client_max_size=config.max_body_bytes,
    )  # fmt: skip
    life = Lifecycle(
        config.limits, metrics or RuntimeMetrics(), engine_call_limit_s=config.engine_call_limit_s
    )
    app[LIFECYCLE] = life
    app[CONFIG] = config
    app[BUDGET] = BodyBudget(config.max_bytes_in_flight)
    app.add_routes(probe_routes)
    app.add_routes(openai_routes)

    async def run_lifecycle(app: web.Application) -> AsyncIterator[None]:
        loading = asyncio.create_task(life.start(load))
        tasks = [loading, asyncio.create_task(life.watch(config.watchdog_period_s))]
        if config.adapters_file is not None:
            tasks.append(asyncio.create_task(_watch_adapters(life, config, loading)))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await life.close()

    app.cleanup_ctx.append(run_lifecycle)
    return app


async def _watch_adapters(
    life: Lifecycle, config: ServeConfig, loading: asyncio.Task[None]
) -> None:
    """Once loaded, keeps the engine's adapters in step with the list file."""
    await asyncio.shield(loading)
    manager, path = life.adapters, config.adapters_file
    if manager is None or path is None:
        return

    async def apply(specs: list[AdapterSpec]) -> list[AdapterError]:
        return await life.worker.call(manager.configure, specs)

    await watch_adapter_list(path, apply, config.adapters_poll_s)


def serve(load: EngineLoader, config: ServeConfig) -> int:
    """Serve until SIGTERM/SIGINT (or a failed load); returns the exit code."""
    code, engine_busy = asyncio.run(_serve(load, config))
    if engine_busy:
        # An engine call (a load, or a decode that outlived the drain) cannot be
        # interrupted, and the interpreter would wait for its thread at exit.
        log.warning("exiting while an engine call still runs")
        logging.shutdown()
        os._exit(code)
    return code


async def _serve(load: EngineLoader, config: ServeConfig) -> tuple[int, bool]:
    app = create_app(load, config)
    life = app[LIFECYCLE]
    # We drain ourselves; aiohttp's own wait only covers what is left after that.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        handler_cancellation=True,
        shutdown_timeout=1.0,
        keepalive_timeout=config.header_timeout_s,
    )
    sock = _listen(config.host, config.port)  # before setup starts loading the model
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        host, port = sock.getsockname()[:2]
        log.info("listening on http://%s:%d", host, port)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _on_signal, life, signum)
        await life.stop_requested.wait()
        drained = await life.drain(config.drain_timeout_s)
        if not drained:
            await life.cut(CUT_GRACE_S)
        busy = life.worker.busy
    finally:
        await runner.cleanup()
    log.info("stopped")
    return (life.exit_code or (0 if drained else 1)), busy


def _on_signal(life: Lifecycle, signum: int) -> None:
    log.info(
        "%s: stop accepting, finish %d requests in flight", signal.strsignal(signum), life.inflight
    )
    life.stop_requested.set()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)
