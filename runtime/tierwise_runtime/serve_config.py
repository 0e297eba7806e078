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
