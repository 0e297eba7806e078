"""Request bodies read under a shared budget of bytes in flight and a read timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aiohttp import web

from .api_errors import ApiError, unavailable

#: Where the body middleware leaves the bytes it read, for the route to parse (and drop).
BODY = web.RequestKey("body", bytearray)


class BodyBudget:
    """Bytes of request bodies held now, across every request; more than `capacity` is refused."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self.peak = 0

    def take(self, count: int) -> bool:
        if self.held + count > self.capacity:
            return False
        self.held += count
        self.peak = max(self.peak, self.held)
        return True

    def give(self, count: int) -> None:
        self.held -= count


class _Claim:
    """What one request holds of the budget; given back whole at the end."""

    def __init__(self, budget: BodyBudget, retry_after_s: int) -> None:
        self._budget = budget
        self._retry_after_s = retry_after_s
        self.bytes = 0

    def grow(self, count: int) -> None:
        if count <= 0:
            return
        if not self._budget.take(count):
            raise unavailable(
                f"too many request bodies in flight ({self._budget.held} of "
                f"{self._budget.capacity} bytes held); retry",
                "bodies_in_flight",
                self._retry_after_s,
            )
        self.bytes += count

    def release(self) -> None:
        self._budget.give(self.bytes)
        self.bytes = 0


@contextlib.contextmanager
def claim(budget: BodyBudget, retry_after_s: int) -> Iterator[_Claim]:
    held = _Claim(budget, retry_after_s)
    try:
        yield held
    finally:
        held.release()


async def read_body(
    request: web.Request, held: _Claim, *, max_bytes: int, timeout_s: float
) -> bytearray:
    """The whole body, counted against the budget as it arrives (its declared length up
    front); 413 past `max_bytes`, 408 when it takes longer than `timeout_s`."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise _too_large(declared, max_bytes)
    if declared is not None:
        held.grow(declared)
    body = bytearray()  # grown in place: no second copy when the last chunk arrives
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(size, max_bytes)
                held.grow(size - held.bytes)
                body += chunk
    except TimeoutError:
        raise ApiError(
            408, f"the body did not arrive within {timeout_s:g} s", code="request_timeout"
        ) from None
    return body


def take_body(request: web.Request) -> bytearray:
    """The body read by the middleware, no longer kept by the request once parsed."""
    body = request[BODY]
    del request[BODY]
    return body


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        f"the body has {size} bytes or more; at most {limit} are accepted",
        code="request_too_large",
    )
