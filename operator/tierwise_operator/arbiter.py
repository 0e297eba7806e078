"""The fleet round: every InferenceModel the operator watches, planned together in one
assignment, each model's reconcile then applying its share of it.

Every trigger — a create, an edit, a child that changed, the periodic re-plan — asks
for a round instead of planning its model alone, so two models can never both be given
the same free device. Requests are debounced: a burst of creates arriving within the
debounce window is one round, and a request made while a round runs waits for the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .metrics.observation import ModelKey
from .planner import MetricsSnapshot, PlannerSettings, model_key
from .reconcile.core import Prepared, finish, prepare
from .reconcile.world import Actions, World

if TYPE_CHECKING:
    from .planner.fleet import FleetPlan
    from .state import OperatorState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundResult:
    """What one round decided and which models it could not carry out."""

    round_id: str
    solver: str
    solver_reason: str
    models: int
    seconds: float
    failed: Mapping[ModelKey, str] = field(default_factory=dict)
    """Models whose reads or writes failed this round (they are tried again next round)."""


def round_name(number: int, at: Any) -> str:
    """`r17@2026-12-04T10:00:00Z`: the round's number in this operator's run and its time."""
    return f"r{number}@{at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def plan_round(
    prepared: Sequence[Prepared],
    snapshot: MetricsSnapshot | None,
    now: datetime,
    settings: PlannerSettings,
) -> FleetPlan:
    """The round's one assignment (pure): every prepared model, its current plan as its
    status records it — the same call `tierwise plan` makes for the same objects."""
    # Imported here: the exact solver loads scipy, which `tierwise --help` should not.
    from .planner.fleet import plan_fleet  # noqa: PLC0415

    tiers = prepared[0].world.tiers if prepared else []
    currents = {model_key(p.planning): p.current for p in prepared}
    return plan_fleet(
        [p.planning for p in prepared], tiers, now, snapshot=snapshot, currents=currents,
        settings=settings,
    )  # fmt: skip


class Arbiter:
    """Runs fleet rounds for one operator: at most one at a time, debounced."""

    def __init__(self, state: OperatorState, debounce: float) -> None:
        self.state = state
        self.debounce = debounce
        self.rounds = 0
        self.last: RoundResult | None = None
        self._lock = asyncio.Lock()
        self._next: asyncio.Future[RoundResult] | None = None
        self._why: dict[ModelKey, str] = {}
        """Why each model asked for the next round (its share is counted under that)."""
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(self, key: ModelKey | None, trigger: str) -> RoundResult:
        """Ask for a round soon; returns once a round that started after this call is done.

        Raises KubeError-derived `RoundFailed` when that round could not carry out `key`'s
        share, so kopf retries the handler that asked.
        """
        if key is not None:
            self._why[key] = trigger
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._debounced(self._next, trigger))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        result = await asyncio.shield(self._next)
        if key is not None and key in result.failed:
            raise RoundFailed(result.failed[key])
        return result

    async def _debounced(self, future: asyncio.Future[RoundResult], trigger: str) -> None:
        await asyncio.sleep(self.debounce)
        if self._next is future:
            self._next = None  # requests from now on wait for the round after this one
        try:
            future.set_result(await self.run(trigger))
        except Exception as exc:  # handed to every requester, who logs or retries
            future.set_exception(exc)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self, trigger: str) -> RoundResult:
        """One round now: read every model, plan the fleet, apply each model's share."""
        async with self._lock:
            started = time.perf_counter()
            self.rounds += 1
            result = await self._round(trigger)
            self.state.metrics.observe_round(trigger, result.solver, time.perf_counter() - started)
            self.last = result
            return result

    async def _round(self, trigger: str) -> RoundResult:
        # Imported here: the handlers module imports this one.
        from .handlers import execute, read_world  # noqa: PLC0415

        state = self.state
        indices = state.indices
        now = state.clock()
        name = round_name(self.rounds, now)
        if indices is None:
            return RoundResult(name, "none", "no model seen yet", 0, 0.0)
        started = time.perf_counter()
        # Why each model is in this round; requests from now on are for the next one.
        why, self._why = self._why, {}
        failed: dict[ModelKey, str] = {}
        prepared: list[Prepared] = []
        bodies = [dict(b) for store in list(indices["model_idx"].values()) for b in list(store)]
        for body in bodies:
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            try:
                read = await read_world(state, body, indices)
            except RoundFailed as exc:
                failed[key] = str(exc)
                continue
            if read is None:
                continue  # deleted meanwhile; its children go with it
            fresh, world = read
            outcome = prepare(fresh, world, now, state.settings)
            if isinstance(outcome, Actions):  # invalid: a condition and an Event, no plan
                await self._carry_out(execute, fresh, outcome, indices, failed)
                continue
            prepared.append(outcome)
        fleet = plan_round(prepared, state.live.snapshot, now, state.planner)
        for p in prepared:
            key = (p.body["metadata"]["namespace"], p.body["metadata"]["name"])
            plan = fleet.plan_for(f"{key[0]}/{key[1]}")
            applying = time.perf_counter()
            actions = finish(p, plan, state.settings, round_id=name)
            await self._carry_out(execute, p.body, actions, indices, failed)
            state.metrics.reconcile_seconds.labels(why.get(key, trigger)).observe(
                time.perf_counter() - applying
            )
        seconds = time.perf_counter() - started
        if failed:
            log.warning("round %s (%s): %d model(s) postponed", name, trigger, len(failed))
        return RoundResult(name, fleet.solver, fleet.solver_reason, len(prepared), seconds, failed)

    async def _carry_out(
        self,
        execute: Any,
        body: dict[str, Any],
        actions: Actions,
        indices: Mapping[str, Any],
        failed: dict[ModelKey, str],
    ) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        try:
            await execute(self.state, body, actions, indices)
        except RoundFailed as exc:
            failed[key] = str(exc)


class RoundFailed(Exception):
    """A model's share of a round could not be read or written (the API may heal)."""


__all__ = ["Arbiter", "RoundFailed", "RoundResult", "World", "plan_round", "round_name"]
