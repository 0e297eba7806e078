"""The adapters part of a reconcile: the list ConfigMap, AdaptersReady, and an Event naming
each adapter that cannot be served (the base and the other adapters keep serving)."""

from __future__ import annotations

from ..api import InferenceModel, InferenceModelStatus, ModelProfile
from ..children.adapters import build_adapters_config_map
from ..conditions import ADAPTERS_READY, UNKNOWN, find
from .conditions_step import ConditionSetter
from .world import Actions, Event


def adapter_problems(model: InferenceModel, profile: ModelProfile | None) -> dict[str, str]:
    """{adapter: why it cannot be served}, from what the profile Job found in its files."""
    if profile is None:
        return {}
    listed = {a.name for a in model.spec.adapters}
    return {a.name: a.error for a in profile.adapters if a.error and a.name in listed}


def adapters_step(
    actions: Actions,
    model: InferenceModel,
    profile: ModelProfile | None,
    setter: ConditionSetter,
    before: InferenceModelStatus,
) -> None:
    """Applies the adapters ConfigMap and sets AdaptersReady (only for models with adapters,
    or that had the condition); a newly failing adapter posts a Warning naming it."""
    config_map = build_adapters_config_map(model)
    if config_map is not None:
        actions.apply.append(config_map)
    was = find(before.conditions, ADAPTERS_READY)
    if not model.spec.adapters:
        if was is not None:
            setter.set(ADAPTERS_READY, True, "NoAdapters", "spec.adapters is empty")
        return
    problems = adapter_problems(model, profile)
    names = ", ".join(a.name for a in model.spec.adapters)
    if problems:
        message = "; ".join(f"adapter {n!r}: {why}" for n, why in sorted(problems.items()))
        setter.set(ADAPTERS_READY, False, "AdapterFailed", message)
    elif profile is None or not _profiled(model, profile):
        setter.set(ADAPTERS_READY, UNKNOWN, "Profiling", f"adapters {names} being profiled")
    else:
        setter.set(ADAPTERS_READY, True, "AdaptersServed", f"serving adapters {names}")
    old = was.message if was is not None and was.reason == "AdapterFailed" else ""
    for name, why in sorted(problems.items()):
        if f"adapter {name!r}: {why}"[:1000] not in old:
            actions.events.append(Event("Warning", "AdapterFailed", f"adapter {name!r}: {why}"))


def _profiled(model: InferenceModel, profile: ModelProfile) -> bool:
    return {a.name for a in model.spec.adapters} <= {a.name for a in profile.adapters}
