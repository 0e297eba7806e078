"""OpenAI-style error answers, as the runtime writes them."""

from __future__ import annotations

from aiohttp import web


def openai_error(
    status: int,
    message: str,
    code: str,
    *,
    param: str | None = None,
    retry_after: float | None = None,
) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 401:
        kind = "authentication_error"
    elif status == 403:
        kind = "permission_error"
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else {}
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)
