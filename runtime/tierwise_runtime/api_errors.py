"""OpenAI-style error bodies, and the middleware that turns every failure into one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from .errors import ShuttingDown

log = logging.getLogger(__name__)

_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


class ApiError(Exception):
    """A request that cannot be served, with the status and OpenAI-style body to answer it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return web.json_response(
            error_body(self.status, self.message, param=self.param, code=self.code),
            status=self.status,
            headers=self.headers,
        )


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    """400: the request itself is wrong."""
    return ApiError(400, message, param=param, code=code)


def unavailable(message: str, code: str, retry_after_s: int) -> ApiError:
    """503 with Retry-After: try again later (or elsewhere)."""
    return ApiError(503, message, code=code, headers={"Retry-After": str(retry_after_s)})


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as an OpenAI-style JSON body, whoever raised it."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except ShuttingDown as exc:
        return ApiError(503, str(exc), code="shutting_down").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc).response()
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return ApiError(500, "internal error; see the server log", code="internal_error").response()


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> ApiError:
    headers = {name: value for name, value in exc.headers.items() if name == "Allow"}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"{request.method} is not allowed on {request.path}; use {allowed}"
    elif isinstance(exc, web.HTTPNotFound):
        message = f"no route {request.method} {request.path}"
    else:
        message = exc.text or exc.reason
    code = _CODES.get(exc.status, exc.reason.lower().replace(" ", "_"))
    return ApiError(exc.status, message, code=code, headers=headers)
