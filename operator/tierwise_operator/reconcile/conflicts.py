"""A model whose child names are taken by objects it does not own: it serves nothing.

Applying over such an object would merge our containers into someone else's
Deployment and add our owner reference, so that deleting the model would
garbage-collect the stranger's object. Instead the reconcile's writes are
dropped and the model says why, until the name is free again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..api import Condition
from ..conditions import READY, find
from .conditions_step import ConditionSetter
from .world import Actions, Event

NAME_CONFLICT = "NameConflict"


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference marked as the object's controller, if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if isinstance(r, Mapping) and r.get("controller")), None)


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    controller = controller_of(obj)
    return controller is not None and controller.get("uid") == uid


def conflict_message(obj: Mapping[str, Any], kind: str) -> str:
    """Names the object and who holds it, so its owner knows what to rename or remove."""
    meta = obj.get("metadata") or {}
    what = f"{kind} {meta.get('namespace')}/{meta.get('name')}"
    controller = controller_of(obj)
    if controller is None:
        held = "is not owned by this InferenceModel"
    else:
        held = f"is controlled by {controller.get('kind')} {controller.get('name')}"
    return f"{what} already exists and {held}: rename the model or remove the object"


def hold_for_conflicts(
    actions: Actions,
    before: Sequence[Condition],
    conflicts: Sequence[str],
    generation: int | None,
    now: datetime,
) -> Actions:
    """The reconcile's status with Ready=False/NameConflict, a Warning Event when that is
    new, and no write to any child (no Job, no apply, no delete)."""
    # Ready's transition is measured against what was last written, not against what
    # this round would have said had the name been free.
    computed = [c for c in _conditions(actions.status) if c.type != READY]
    was = find(before, READY)
    setter = ConditionSetter([*computed, *([was] if was else [])], generation, now)
    message = "; ".join(conflicts)
    setter.set(READY, False, NAME_CONFLICT, message)
    events = list(actions.events)
    if was is None or was.reason != NAME_CONFLICT or was.message != message[:1000]:
        events.append(Event("Warning", NAME_CONFLICT, message))
    status = {**actions.status, "conditions": [c.to_wire() for c in setter.conditions]}
    return Actions(status=status, events=events, plan=actions.plan)


def _conditions(status: Mapping[str, Any]) -> list[Condition]:
    out = []
    for wire in status.get("conditions") or []:
        try:
            out.append(Condition.model_validate(wire))
        except ValidationError:
            continue
    return out
