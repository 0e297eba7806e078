"""One reconcile of one InferenceModel: validate, profile, plan, render children, write status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ..api import (
    PRIMARY_VARIANT,
    FailedCandidate,
    InferenceModel,
    InferenceModelStatus,
    InvalidSpec,
    TierClass,
)
from ..children.hostpaths import source_problems
from ..children.serving import Placement, build_deployment, build_pdb, build_service
from ..conditions import INPUTS_RESOLVED, PROFILED, READY, find
from ..kube import PDBS
from ..manifests import parse_resource
from ..planner import ChangeKind, CurrentPlan, Plan, PlannerSettings, decide
from ..planner.input_checks import condition as input_condition
from ..planner.input_checks import model_findings
from ..settings import Settings
from .adapters_step import adapters_step
from .conditions_step import (
    ConditionSetter,
    metrics_condition,
    quality_conditions,
    rollout,
    serving_conditions,
)
from .failures import update_failed
from .profile_step import ProfileOutcome, ensure_profile
from .world import Actions, Event, World

Manifest = dict[str, Any]


def previous_status(body: Manifest) -> InferenceModelStatus:
    """The status as last written; an unreadable one counts as empty rather than blocking."""
    try:
        return InferenceModelStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return InferenceModelStatus()


@dataclass(frozen=True)
class Prepared:
    """One model read and checked, its profile settled: what the fleet round plans with."""

    body: Manifest
    model: InferenceModel
    planning: InferenceModel
    """The model with the profile and failed candidates the plan must use."""
    status: InferenceModelStatus
    """The status as last written."""
    setter: ConditionSetter
    generation: int | None
    failed: list[FailedCandidate]
    fresh: list[FailedCandidate]
    outcome: ProfileOutcome
    world: World

    @property
    def current(self) -> CurrentPlan:
        return CurrentPlan.from_model(self.planning)


def reconcile(
    body: Manifest,
    world: World,
    now: datetime,
    settings: Settings,
    planner_settings: PlannerSettings,
) -> Actions:
    """One model planned alone (as if it had the free capacity to itself)."""
    prepared = prepare(body, world, now, settings)
    if isinstance(prepared, Actions):
        return prepared
    plan = decide(
        prepared.planning,
        world.tiers,
        now,
        snapshot=world.snapshot,
        current=prepared.current,
        settings=planner_settings,
    )
    return finish(prepared, plan, settings)


def prepare(body: Manifest, world: World, now: datetime, settings: Settings) -> Prepared | Actions:
    """Validate and settle the profile; an invalid spec is finished at once (Actions)."""
    status = previous_status(body)
    generation = (body.get("metadata") or {}).get("generation")
    setter = ConditionSetter(status.conditions, generation, now)
    try:
        parsed = parse_resource({**body, "status": None})
    except InvalidSpec as exc:
        return _invalid(exc, status, setter, generation)
    assert isinstance(parsed, InferenceModel)
    if host_problems := source_problems(parsed, settings.host_path_prefixes):
        return _invalid(InvalidSpec(host_problems), status, setter, generation)
    model = parsed.model_copy(update={"status": status})
    backoff = timedelta(seconds=float(settings.failed_candidate_backoff))
    failed, fresh = update_failed(status.failed_candidates, world.pods, now, backoff)
    outcome = ensure_profile(
        model,
        world.tiers,
        world.jobs,
        world.pods,
        settings,
        eval_digest=world.eval_digest,
        eval_problem=world.eval_problem,
        tiers_with_nodes=_tiers_with_nodes(world),
    )
    planning = model.model_copy(
        update={
            "status": status.model_copy(
                update={"profile": outcome.profile, "failed_candidates": failed}
            )
        }
    )
    return Prepared(body, model, planning, status, setter, generation, failed, fresh, outcome,
                    world)  # fmt: skip


def finish(
    prepared: Prepared, plan: Plan, settings: Settings, round_id: str | None = None
) -> Actions:
    """Children, conditions, status and Events for the model's share of a plan."""
    p, world, setter = prepared, prepared.world, prepared.setter
    actions = Actions(status={}, create=p.outcome.create, plan=plan)
    _children(actions, p.model, plan, world, settings)
    adapters_step(actions, p.model, p.outcome.profile, setter, p.status)
    setter.set(PROFILED, p.outcome.ready, p.outcome.reason, p.outcome.message)
    serving_conditions(
        setter, plan, world.deployment, p.failed, profiling=p.outcome.reason == "Profiling"
    )
    quality_conditions(setter, p.planning, plan, world.snapshot)
    metrics_condition(setter, world.observation)
    inputs_event = _inputs_condition(setter, p)
    actions.status = _status(
        plan, p.outcome, failed=p.failed, setter=setter, generation=p.generation, world=world
    )
    if round_id is not None and isinstance(actions.status.get("decision"), dict):
        actions.status["decision"]["round"] = round_id
    _keep_decision_time(actions.status, p.status)
    actions.events += _events(p.status, plan, p.outcome, p.fresh, setter) + inputs_event
    return actions


def _inputs_condition(setter: ConditionSetter, p: Prepared) -> list[Event]:
    """Say which named TierClasses do not exist and what given input is ignored (the model
    still plans over what exists); a Warning Event when that changes."""
    ok, reason, message = input_condition(model_findings(p.model, p.world.tiers))
    was = find(p.status.conditions, INPUTS_RESOLVED)
    setter.set(INPUTS_RESOLVED, ok, reason, message)
    if ok or (was is not None and was.reason == reason and was.message == message[:1000]):
        return []
    return [Event("Warning", reason, message)]


def _tiers_with_nodes(world: World) -> set[str] | None:
    """TierClasses at least one node belongs to; None when the nodes are not known."""
    if world.node_labels is None:
        return None
    return {
        tier.name
        for tier in world.tiers
        for labels in world.node_labels
        if all(labels.get(k) == v for k, v in tier.spec.node_selector.items())
    }


def _invalid(
    exc: InvalidSpec, status: InferenceModelStatus, setter: ConditionSetter, generation: int | None
) -> Actions:
    """An invalid spec becomes a condition and an Event; no child is touched."""
    message = "; ".join(exc.problems)
    was = find(status.conditions, READY)
    setter.set(READY, False, "InvalidSpec", message)
    events = []
    if was is None or was.reason != "InvalidSpec" or was.message != message[:1000]:
        events.append(Event("Warning", "InvalidSpec", message))
    cond_wire = [c.to_wire() for c in setter.conditions]
    return Actions(
        status={"observedGeneration": generation, "conditions": cond_wire}, events=events
    )


def _source_of(model: InferenceModel, variant: str) -> str:
    if variant == PRIMARY_VARIANT:
        return model.spec.model.source.uri
    return next(v.source.uri for v in model.spec.model.variants if v.name == variant)


def _tier(tiers: list[TierClass] | Any, name: str) -> TierClass:
    return next(t for t in tiers if t.name == name)


def _children(
    actions: Actions, model: InferenceModel, plan: Plan, world: World, settings: Settings
) -> None:
    """Render the serving children for the chosen candidate; with none, touch nothing."""
    chosen = plan.chosen
    if chosen is None or plan.host_memory_request_bytes is None:
        return
    placement = Placement(
        variant=chosen.key.variant,
        source_uri=_source_of(model, chosen.key.variant),
        precision=chosen.key.precision,
        tier_class=_tier(world.tiers, chosen.key.tier_class),
        replicas=plan.replicas,
        memory_request_bytes=plan.host_memory_request_bytes,
        cpu_request=plan.cpu_request,
        gpu=plan.needs_gpu,
        max_batch=plan.max_batch,
    )
    actions.apply.append(build_deployment(model, placement, settings))
    actions.apply.append(build_service(model, settings))
    pdb = build_pdb(model, placement)
    if pdb is not None:
        actions.apply.append(pdb)
    elif world.pdb_exists:
        actions.delete.append((PDBS, model.name))


def _status(
    plan: Plan,
    outcome: ProfileOutcome,
    *,
    failed: list[FailedCandidate],
    setter: ConditionSetter,
    generation: int | None,
    world: World,
) -> dict[str, Any]:
    ready, _, _ = rollout(world.deployment)
    status: dict[str, Any] = {
        **plan.status_fields(),
        "observedGeneration": generation,
        "readyReplicas": ready,
        "failedCandidates": [f.to_wire() for f in failed],
        "conditions": [c.to_wire() for c in setter.conditions],
    }
    if outcome.new and outcome.profile is not None:
        status["profile"] = outcome.profile.to_wire()
        status["profileKey"] = outcome.key
    elif not outcome.ready and outcome.key is not None:
        # A profile measured for another checkpoint or eval set no longer applies.
        status["profile"] = None
        status["profileKey"] = None
    return status


#: What says when and how a decision was reached, not what it is.
_PROVENANCE = {"decidedAt": None, "round": None, "solver": None}


def _keep_decision_time(fields: dict[str, Any], before: InferenceModelStatus) -> None:
    """A decision reached again keeps the time, round and solver that first reached it: a
    plan that holds leaves the status as it was (and so sends no write)."""
    decision, earlier = fields.get("decision"), before.decision
    if not isinstance(decision, dict) or earlier is None or earlier.decided_at is None:
        return
    was = earlier.to_wire()
    if {**was, **_PROVENANCE} == {**decision, **_PROVENANCE}:
        for key in _PROVENANCE:
            decision[key] = was.get(key)
        decision = {k: v for k, v in decision.items() if v is not None}
        fields["decision"] = decision


def _events(
    before: InferenceModelStatus,
    plan: Plan,
    outcome: ProfileOutcome,
    fresh: list[FailedCandidate],
    setter: ConditionSetter,
) -> list[Event]:
    """An Event for every decision that changed something, never for a plan that held."""
    events = [Event("Warning", "CandidateFailed", f"{f.candidate}: {f.reason}") for f in fresh]
    was_profiled = find(before.conditions, PROFILED)
    now_profiled = find(setter.conditions, PROFILED)
    changed = was_profiled is None or (now_profiled and was_profiled.reason != now_profiled.reason)
    if now_profiled and changed and now_profiled.reason != "ProfileGiven":
        kind = "Normal" if now_profiled.reason != "ProfileFailed" else "Warning"
        events.append(Event(kind, now_profiled.reason, now_profiled.message))
    events += _fleet_events(before, plan)
    if plan.change is ChangeKind.INFEASIBLE:
        if before.decision is None or before.decision.change != ChangeKind.INFEASIBLE.value:
            events.append(Event("Warning", "NoFeasiblePlan", plan.reason))
    elif plan.changed and plan.change is not ChangeKind.DISPLACED:  # its own Event says it
        reason = "Planned" if plan.change is ChangeKind.INITIAL else "PlanChanged"
        events.append(Event("Normal", reason, f"{plan.change}: {plan.reason}"))
    return events


def _fleet_events(before: InferenceModelStatus, plan: Plan) -> list[Event]:
    """A Warning when other models newly hold the room a model wants (or it is newly scaled
    to zero for them); a Normal Event on the model that takes room from another."""
    events = []
    d = plan.displacement
    was = before.decision
    if d is not None:
        newly_by = was is None or was.displaced_by != list(d.by)
        newly_zero = plan.change is ChangeKind.DISPLACED and (
            was is None or was.change != ChangeKind.DISPLACED.value
        )
        if newly_by or newly_zero:
            events.append(Event("Warning", "Displaced", d.message()))
    if plan.preempted:
        events.append(
            Event("Normal", "Preempted", f"takes the room of {', '.join(plan.preempted)} "
                  f"(lower priority) for {plan.chosen.key if plan.chosen else 'its plan'}")
        )  # fmt: skip
    return events
