"""Settings of one HTTP server, as `tierwise-runtime serve` takes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .batching import BatchLimits


@dataclass(frozen=True)
class ServeConfig:
    host: str = "0.0.0.0"
    #: TCP port; 0 picks a free one (it is logged).
    port: int = 8000
    limits: BatchLimits = field(default_factory=BatchLimits)
    #: Longest SIGTERM waits for requests in flight before exiting anyway.
    drain_timeout_s: float = 30.0
    #: Retry-After (seconds) of 503 answers when the queue is full or the model is loading.
    retry_after_s: int = 1
    #: Largest request body accepted (413 beyond).
    max_body_bytes: int = 8 * 2**20
    #: The adapters list (a ConfigMap mount) re-read while serving; None: no watching.
    adapters_file: Path | None = None
    #: Seconds between reads of `adapters_file`.
    adapters_poll_s: float = 5.0
    #: Most request-body bytes held at once across all requests (503 + Retry-After beyond);
    #: a body counts from its first byte read until its answer ends.
    max_bytes_in_flight: int = 64 * 2**20
    #: Longest a request's headers may take to arrive, from connecting or from the previous
    #: answer on the connection (it is also how long an idle keep-alive connection stays).
    header_timeout_s: float = 15.0
    #: Longest a request's body may take to arrive once its headers have (408 beyond).
    body_timeout_s: float = 30.0
    #: Most characters of input per token of the model's context, checked before tokenizing:
    #: a text longer than `max_tokens * chars_per_token` cannot fit and is refused unread.
    chars_per_token: int = 32
    #: Longest one engine call may run while serving before /readyz turns 503 (the watchdog).
    engine_call_limit_s: float = 60.0
    #: How often the watchdog looks at the running engine call.
    watchdog_period_s: float = 1.0
    #: When set, every route but /healthz, /readyz and /metrics needs `Authorization: Bearer`
    #: with this key (401 otherwise).
    api_key: str | None = field(default=None, repr=False)
