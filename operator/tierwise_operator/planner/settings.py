"""Planner policy knobs (margins, dwell, windows), with the defaults the operator starts from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal


@dataclass(frozen=True)
class PlannerSettings:
    """How eagerly plans change; every field has the default used when unset."""

    #: A different candidate must cost at least this fraction less than the current one.
    switch_margin: Decimal = Decimal("0.10")
    #: Minimum time between changes of variant, precision or TierClass.
    min_dwell: timedelta = timedelta(minutes=15)
    #: Scale down only to the highest recommendation inside this window (the HPA's default).
    scale_down_window: timedelta = timedelta(minutes=5)
    #: After a scale or a switch, a measured latency breach is answered again only once
    #: measured this long after it: the latency window still holds the old replicas' requests.
    breach_settle: timedelta = timedelta(minutes=5)
    #: Observed metrics older than this are stale: no tier change is made on them.
    metrics_max_age: timedelta = timedelta(minutes=5)
    #: A demand signal from the gateway (`tierwise.dev/demand-at`) holds at least one
    #: replica this long, until measured traffic can speak for the model.
    wake_hold: timedelta = timedelta(minutes=5)
    #: Fleet: use the exact MILP while it has at most this many placement variables.
    exact_max_variables: int = 4000
    #: Fleet: wall-clock budget handed to the MILP solver, in seconds.
    exact_time_limit_s: float = 2.0


DEFAULT_SETTINGS = PlannerSettings()
