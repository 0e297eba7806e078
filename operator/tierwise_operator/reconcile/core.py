"""One reconcile of one InferenceModel: validate, profile, plan, render children, write status."""

from __future__ import annotations

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
from ..children.serving import Placement, build_deployment, build_pdb, build_service
from ..conditions import PROFILED, READY, find
from ..kube import PDBS
from ..manifests import parse_resource
from ..planner import ChangeKind, CurrentPlan, Plan, PlannerSettings, decide
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


def reconcile(
    body: Manifest,
    world: World,
    now: datetime,
    settings: Settings,
    planner_settings: PlannerSettings,
) -> Actions:
    status = previous_status(body)
    generation = (body.get("metadata") or {}).get("generation")
    setter = ConditionSetter(status.conditions, generation, now)
    try:
        parsed = parse_resource({**body, "status": None})
    except InvalidSpec as exc:
        return _invalid(exc, status, setter, generation)
    assert isinstance(parsed, InferenceModel)
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
    plan = decide(
        planning,
        world.tiers,
        now,
        snapshot=world.snapshot,
        current=CurrentPlan.from_model(planning),
        settings=planner_settings,
    )
    actions = Actions(status={}, create=outcome.create, plan=plan)
    _children(actions, model, plan, world, settings)
    adapters_step(actions, model, outcome.profile, setter, status)
    setter.set(PROFILED, outcome.ready, outcome.reason, outcome.message)
    serving_conditions(
        setter, plan, world.deployment, failed, profiling=outcome.reason == "Profiling"
    )
    quality_conditions(setter, planning, plan, world.snapshot)
    metrics_condition(setter, world.observation)
    actions.status = _status(
        plan, outcome, failed=failed, setter=setter, generation=generation, world=world
    )
    _keep_decision_time(actions.status, status)
    actions.events += _events(status, plan, outcome, fresh, setter)
    return actions


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


def _keep_decision_time(fields: dict[str, Any], before: InferenceModelStatus) -> None:
    """A decision reached again keeps the time it was first reached: a plan that holds
    leaves the status as it was (and so sends no write)."""
    decision, earlier = fields.get("decision"), before.decision
    if not isinstance(decision, dict) or earlier is None or earlier.decided_at is None:
        return
    if {**earlier.to_wire(), "decidedAt": None} == {**decision, "decidedAt": None}:
        decision["decidedAt"] = earlier.decided_at


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
    if plan.change is ChangeKind.INFEASIBLE:
        if before.decision is None or before.decision.change != ChangeKind.INFEASIBLE.value:
            events.append(Event("Warning", "NoFeasiblePlan", plan.reason))
    elif plan.changed:
        reason = "Planned" if plan.change is ChangeKind.INITIAL else "PlanChanged"
        events.append(Event("Normal", reason, f"{plan.change}: {plan.reason}"))
    return events
