"""The gateway's settings: one object, each field a command-line flag."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GatewaySettings:
    #: Longest a request waits for a ready replica (a model woken from zero, a replica
    #: being replaced) before it gets 503 with Retry-After.
    wait_s: float = 60.0
    #: Requests per model that may wait for a ready replica at once; more get 503 at once.
    max_queue: int = 100
    #: Requests per model admitted at once (waiting or in flight); more get 503 at once,
    #: so one hot model cannot take every connection from the others.
    max_pending: int = 1000
    #: Retry-After (s) the gateway's own 503s carry.
    retry_after_s: int = 5
    #: Least time between two demand signals for one model.
    demand_interval_s: float = 5.0
    #: Connecting to a replica: past this the attempt goes to another replica.
    connect_timeout_s: float = 2.0
    #: A replica silent this long after taking a request: 504 (not retried, it may be working).
    read_timeout_s: float = 600.0
    #: Largest request body accepted.
    max_body_bytes: int = 16 * 2**20
