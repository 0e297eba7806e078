"""One attempt at one replica: forward the request, pass the answer (and SSE) through.

An attempt ends in one of three verdicts. RETRY: the request never reached an
engine (connection refused or reset, no answer, 503 `shutting_down` or
`model_loading`) and nothing was sent to the client, so another replica may
take it. BUSY: the replica's queue was full (503 `queue_full`); another replica
may have room, and if none has, its answer goes to the client. DONE: the
answer (or the stream, once started) went to the client; it is never retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

import aiohttp
from aiohttp import web

from .errors import openai_error

#: 503 codes from a replica that did not start the work: safe on another replica.
RETRY_CODES = frozenset({"shutting_down", "model_loading"})
#: 503 codes from a replica too busy to queue it: another replica may have room.
BUSY_CODES = frozenset({"queue_full"})
#: Headers that belong to one connection, not to the answer.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server",
     "upgrade", "proxy-connection", "te", "trailer"}
)  # fmt: skip


class Verdict(Enum):
    DONE = "done"
    RETRY = "retry"
    BUSY = "busy"


@dataclass
class Attempt:
    verdict: Verdict
    reason: str = ""
    status: int = 0
    response: web.StreamResponse | None = None
    """DONE: what the client got (a stream already sent); BUSY: the replica's 503 to pass on."""
    broken: bool = False
    """A stream that ended early (the replica or the client went away)."""


def error_code(payload: bytes) -> str | None:
    """The `error.code` of an OpenAI-style error body, or None."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def passed_headers(upstream: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}


async def attempt(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    request: web.Request,
) -> Attempt:
    """Send the request to `url`; the client's response is written only on DONE."""
    try:
        async with session.post(url, data=body, headers=headers) as upstream:
            if upstream.content_type == "text/event-stream" and upstream.status == 200:
                return await _stream(upstream, request)
            payload = await upstream.read()
            response = web.Response(
                body=payload, status=upstream.status, headers=passed_headers(upstream)
            )
            if upstream.status == 503:
                code = error_code(payload) or "unavailable"
                if code in RETRY_CODES:
                    return Attempt(Verdict.RETRY, code, 503)
                if code in BUSY_CODES:
                    return Attempt(Verdict.BUSY, code, 503, response)
            return Attempt(Verdict.DONE, "", upstream.status, response)
    except aiohttp.SocketTimeoutError:
        # The replica took the request and went quiet: it may be working on it still.
        return Attempt(Verdict.DONE, "timeout", 504, _timed_out())
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Nothing was written to the client: the attempt left no trace but the replica's.
        return Attempt(Verdict.RETRY, _reason(exc))


async def _stream(upstream: aiohttp.ClientResponse, request: web.Request) -> Attempt:
    """Pass server-sent events on as they arrive; from here on, no retry."""
    response = web.StreamResponse(status=upstream.status, headers=passed_headers(upstream))
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Cut the client's connection too: a clean end would pass a truncated stream off
        # as a whole one. It cannot be retried, events were sent.
        if request.transport is not None:
            request.transport.abort()
        return Attempt(Verdict.DONE, _reason(exc), upstream.status, response, broken=True)
    except ConnectionResetError:
        return Attempt(Verdict.DONE, "client_closed", upstream.status, response, broken=True)
    try:
        await response.write_eof()
    except ConnectionResetError:
        return Attempt(Verdict.DONE, "client_closed", upstream.status, response, broken=True)
    return Attempt(Verdict.DONE, "", upstream.status, response)


def _timed_out() -> web.Response:
    return openai_error(504, "the replica did not answer in time", "upstream_timeout")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect_failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "connection_error"
