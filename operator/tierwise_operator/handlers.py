"""The kopf handlers: thin wiring from watch events and timers to the pure reconcile.

Everything is registered on a registry built per run (`build_registry`), so the
re-plan interval comes from the settings and tests can run several operators.
Handlers read the cluster from kopf indices (no API round-trips per reconcile),
execute the reconcile's actions through the Kube facade, and post Events.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, cast

import kopf
from pydantic import ValidationError

from .api import InferenceModelStatus, TierClass, format_validation_error
from .arbiter import RoundFailed
from .children.common import MODEL_LABEL
from .kube import CONFIGMAPS, INFERENCE_MODELS, KubeError
from .ownership import delete_if_owned, hold_if_names_taken
from .reconcile import Actions, World
from .reconcile.failures import pod_failure
from .state import OperatorState
from .unchanged import merge_patch_changes

log = logging.getLogger(__name__)

GROUP, VERSION = "tierwise.dev", "v1alpha1"
MODELS = (GROUP, VERSION, "inferencemodels")
TIERS = (GROUP, VERSION, "tierclasses")
OWNED: dict[str, Any] = {
    "app.kubernetes.io/managed-by": "tierwise",
    MODEL_LABEL: kopf.PRESENT,
}
LABELLED: dict[str, Any] = {MODEL_LABEL: kopf.PRESENT}


def _by_model(namespace: str | None, labels: Mapping[str, str], body: Any) -> dict[Any, Any]:
    return {(namespace, labels[MODEL_LABEL]): dict(body)}


def _kopf_body(body: Mapping[str, Any]) -> kopf.Body:
    """kopf's Body for a raw mapping (index entries are plain dicts)."""
    return kopf.Body(cast(kopf.RawBody, dict(body)))


def _store(index: Any, key: Any) -> list[dict[str, Any]]:
    return list(index.get(key, [])) if index is not None else []


def tier_classes(index: Any) -> list[TierClass]:
    """Every valid TierClass (invalid ones get an Event from their own handler)."""
    tiers = []
    for store in index.values():
        for body in store:
            try:
                tiers.append(TierClass.model_validate(body))
            except ValidationError:
                continue
    return sorted(tiers, key=lambda t: t.name)


async def _eval_digest(state: OperatorState, body: Mapping[str, Any]) -> tuple[str, str | None]:
    ref = ((body.get("spec") or {}).get("accuracyBudget") or {}).get("evalSet") or {}
    ref = ref.get("configMapRef") if isinstance(ref, dict) else None
    if not isinstance(ref, dict) or "name" not in ref:
        return "", None
    namespace = body["metadata"]["namespace"]
    try:
        cm = await state.kube.get(CONFIGMAPS, ref["name"], namespace)
    except KubeError as exc:
        return "", f"cannot read ConfigMap {namespace}/{ref['name']}: {exc}"
    if cm is None:
        return "", f"ConfigMap {namespace}/{ref['name']} with the eval set does not exist"
    data = (cm.get("data") or {}).get(ref.get("key", ""))
    if data is None:
        return "", f"ConfigMap {namespace}/{ref['name']} has no key {ref.get('key')!r}"
    return hashlib.sha256(data.encode()).hexdigest(), None


async def read_world(
    state: OperatorState, body: Mapping[str, Any], indices: Mapping[str, Any]
) -> tuple[dict[str, Any], World] | None:
    """The model as it is now and the cluster as its reconcile sees it (None: deleted)."""
    try:
        fresh = await _current_body(state, body)
    except KubeError as exc:
        raise RoundFailed(f"reading the model: {exc}") from exc
    if fresh is None:
        return None
    namespace, name = fresh["metadata"]["namespace"], fresh["metadata"]["name"]
    key = (namespace, name)
    state.models.add(key)
    digest, problem = await _eval_digest(state, fresh)
    deployments = _store(indices.get("deployment_idx"), key)
    world = World(
        tiers=tier_classes(indices["tierclass_idx"]),
        snapshot=state.live.snapshot,
        observation=state.live.observation,
        jobs=_store(indices.get("job_idx"), key),
        pods=_store(indices.get("pod_idx"), key),
        deployment=deployments[0] if deployments else None,
        pdb_exists=bool(_store(indices.get("pdb_idx"), key)),
        node_labels=[labels for store in indices["node_idx"].values() for labels in store],
        eval_digest=digest,
        eval_problem=problem,
    )
    return fresh, world


async def execute(
    state: OperatorState, body: Mapping[str, Any], actions: Actions, indices: Mapping[str, Any]
) -> None:
    """Carry out one model's actions; an API failure postpones the model to a later round."""
    try:
        live = partial(_live_child, indices)
        actions = await hold_if_names_taken(state.kube, body, actions, live, state.clock())
        await _execute(state, body, actions, indices)
    except KubeError as exc:
        raise RoundFailed(str(exc)) from exc


async def request_round(state: OperatorState, body: Mapping[str, Any], trigger: str) -> None:
    """Have the fleet round that follows this change reconcile the model (kopf retries the
    handler if the round could not carry the model's share out)."""
    meta = body["metadata"]
    try:
        await state.arbiter.request((meta["namespace"], meta["name"]), trigger)
    except RoundFailed as exc:
        raise kopf.TemporaryError(f"{trigger}: {exc}", delay=5) from exc


async def _current_body(state: OperatorState, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The model as it is now: hysteresis needs the status as last written.

    The body a handler was given may predate the last status write (an index
    entry, a queued event); it is current when it carries the resourceVersion
    this operator last read or wrote, and is read from the API otherwise.
    """
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    if meta.get("resourceVersion") and state.versions.get(key) == meta["resourceVersion"]:
        return dict(body)
    fresh = await state.kube.get(INFERENCE_MODELS, meta["name"], meta["namespace"])
    if fresh is not None:
        state.versions[key] = fresh["metadata"]["resourceVersion"]
    return fresh


#: Where the operator's watch keeps each kind of child it applies, by (namespace, model).
CHILD_INDICES = {
    "Deployment": "deployment_idx",
    "Service": "service_idx",
    "PodDisruptionBudget": "pdb_idx",
}


def _live_child(indices: Mapping[str, Any], manifest: Mapping[str, Any]) -> Any:
    """The child as the watch last saw it, or None (not watched, not there)."""
    index = indices.get(CHILD_INDICES.get(manifest["kind"], ""))
    meta = manifest["metadata"]
    owner = (meta.get("namespace"), (meta.get("labels") or {}).get(MODEL_LABEL))
    found = [b for b in _store(index, owner) if b["metadata"]["name"] == meta["name"]]
    return found[0] if found else None


async def _execute(
    state: OperatorState, body: Mapping[str, Any], actions: Actions, indices: Mapping[str, Any]
) -> None:
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    for job in actions.create:
        await state.kube.create_if_absent(job)
    for manifest in actions.apply:
        if state.applied.unchanged(manifest, _live_child(indices, manifest)):
            state.metrics.writes_skipped.labels(manifest["kind"]).inc()
            continue
        state.applied.record(manifest, await state.kube.apply(manifest))
    for kind, name in actions.delete:
        await delete_if_owned(state.kube, kind, name, meta["namespace"], meta["uid"])
    if merge_patch_changes(body.get("status") or {}, actions.status):
        written = await state.kube.patch_status(
            INFERENCE_MODELS, meta["name"], meta["namespace"], actions.status
        )
        state.versions[key] = written["metadata"]["resourceVersion"]
    else:
        state.metrics.writes_skipped.labels("InferenceModelStatus").inc()
    for event in actions.events:
        # Posted through our own client: the periodic re-plan runs outside kopf's handler
        # context, where kopf.event has no queue to post to.
        await state.kube.post_event(
            dict(body), event.type, event.reason, event.message, state.settings.field_manager
        )
    plan = actions.plan
    if plan is not None and plan.changed:
        state.metrics.plan_changes.labels(plan.change.value).inc()
    try:
        status = InferenceModelStatus.model_validate(actions.status)
    except ValidationError:
        return
    state.metrics.observe_status(meta["namespace"], meta["name"], status, actions.feasible)


def _child_digest(body: Mapping[str, Any]) -> str:
    """What about a child can change a decision: its status and, for pods, their containers."""
    relevant = {"status": body.get("status"), "generation": body["metadata"].get("generation")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def build_registry(state_factory: Any, replan_seconds: float) -> kopf.OperatorRegistry:
    """Register every handler on a fresh registry; `state_factory()` is called at startup."""
    registry = kopf.OperatorRegistry()
    _register_lifecycle(registry, state_factory, replan_seconds)
    _register_indices(registry)
    _register_models(registry)
    _register_children(registry)
    _register_tiers(registry)
    return registry


def _register_lifecycle(
    registry: kopf.OperatorRegistry, state_factory: Any, replan_seconds: float
) -> None:
    @kopf.on.startup(registry=registry, id="startup")
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="tierwise.dev"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="tierwise.dev"
        )
        settings.posting.level = logging.WARNING  # our own Events say what happened
        state: OperatorState = state_factory()
        memo.state = state
        await state.start_collector(replan_seconds, after=replan_all)

    @kopf.on.cleanup(registry=registry, id="cleanup")
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        await memo.state.stop()


def _register_indices(registry: kopf.OperatorRegistry) -> None:
    """What reconciles read instead of calling the API: children by (namespace, model)."""

    @kopf.index(*TIERS, registry=registry, id="tierclass_idx")
    def tierclass_idx(name: str, body: Any, **_: Any) -> dict[str, Any]:
        return {name: dict(body)}

    @kopf.index("batch", "v1", "jobs", labels=OWNED, registry=registry, id="job_idx")
    def job_idx(namespace: str | None, labels: Any, body: Any, **_: Any) -> dict[Any, Any]:
        return _by_model(namespace, labels, body)

    @kopf.index("", "v1", "pods", labels=LABELLED, registry=registry, id="pod_idx")
    def pod_idx(namespace: str | None, labels: Any, body: Any, **_: Any) -> dict[Any, Any]:
        return _by_model(namespace, labels, body)

    @kopf.index("apps", "v1", "deployments", labels=OWNED, registry=registry, id="deployment_idx")
    def deployment_idx(namespace: str | None, labels: Any, body: Any, **_: Any) -> dict[Any, Any]:
        return _by_model(namespace, labels, body)

    @kopf.index("", "v1", "services", labels=OWNED, registry=registry, id="service_idx")
    def service_idx(namespace: str | None, labels: Any, body: Any, **_: Any) -> dict[Any, Any]:
        return _by_model(namespace, labels, body)

    @kopf.index(
        "policy", "v1", "poddisruptionbudgets", labels=OWNED, registry=registry, id="pdb_idx"
    )
    def pdb_idx(namespace: str | None, labels: Any, body: Any, **_: Any) -> dict[Any, Any]:
        return _by_model(namespace, labels, body)

    @kopf.index("", "v1", "nodes", registry=registry, id="node_idx")
    def node_idx(name: str, labels: Any, **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.index(*MODELS, registry=registry, id="model_idx")
    def model_idx(namespace: str | None, name: str, body: Any, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): body}


def _remember_indices(state: OperatorState, kwargs: Mapping[str, Any]) -> None:
    """Keep kopf's (live) indices, so the periodic re-plan can read them outside a handler."""
    if state.indices is None:
        state.indices = {k: v for k, v in kwargs.items() if k.endswith("_idx")}


async def replan_all(state: OperatorState) -> None:
    """Re-plan every model from the latest metrics: the periodic half of the control loop.

    One round for all models rather than a kopf timer per model, because kopf
    puts a finalizer on every object a timer watches: deleting a model (or its
    namespace) would then hang whenever the operator is not running.
    """
    await state.arbiter.run("timer")


def _register_models(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.create(*MODELS, registry=registry, id="model_changed")
    @kopf.on.update(*MODELS, registry=registry, id="model_changed")
    @kopf.on.resume(*MODELS, registry=registry, id="model_changed")
    async def model_changed(body: Any, memo: kopf.Memo, reason: str, **kwargs: Any) -> None:
        _remember_indices(memo.state, kwargs)
        await request_round(memo.state, body, trigger=str(reason))

    @kopf.on.delete(*MODELS, optional=True, registry=registry, id="model_deleted")
    def model_deleted(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
        key = (namespace or "default", name)
        memo.state.metrics.forget(*key)
        memo.state.models.discard(key)
        memo.state.applied.forget(*key)
        memo.state.versions.pop(key, None)


async def _wake_owner(body: Any, memo: kopf.Memo, kind: str, kwargs: dict[str, Any]) -> None:
    """Reconcile a child's model at once when something a decision depends on changed."""
    meta = body["metadata"]
    key = (kind, meta["namespace"], meta["name"])
    digest = _child_digest(body)
    state: OperatorState = memo.state
    _remember_indices(state, kwargs)
    if state.child_digests.get(key) == digest:
        return
    state.child_digests[key] = digest
    owner = (meta["namespace"], meta.get("labels", {}).get(MODEL_LABEL))
    for model in kwargs["model_idx"].get(owner, []):
        await request_round(state, model, trigger=f"{kind}-changed")


def _register_children(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event("batch", "v1", "jobs", labels=OWNED, registry=registry, id="job_event")
    async def job_event(body: Any, memo: kopf.Memo, **kwargs: Any) -> None:
        status = body.get("status") or {}
        if status.get("succeeded") or status.get("failed"):
            await _wake_owner(body, memo, "job", kwargs)

    @kopf.on.event(
        "apps", "v1", "deployments", labels=OWNED, registry=registry, id="deployment_event"
    )
    async def deployment_event(body: Any, memo: kopf.Memo, **kwargs: Any) -> None:
        await _wake_owner(body, memo, "deployment", kwargs)

    @kopf.on.event("", "v1", "pods", labels=LABELLED, registry=registry, id="pod_event")
    async def pod_event(body: Any, memo: kopf.Memo, **kwargs: Any) -> None:
        if pod_failure(dict(body)) is not None:
            await _wake_owner(body, memo, "pod", kwargs)


def _register_tiers(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.create(*TIERS, registry=registry, id="tierclass_changed")
    @kopf.on.update(*TIERS, registry=registry, id="tierclass_changed")
    @kopf.on.resume(*TIERS, registry=registry, id="tierclass_changed")
    async def tierclass_changed(body: Any, memo: kopf.Memo, **_: Any) -> None:
        try:
            TierClass.model_validate(dict(body))
        except ValidationError as exc:
            problems = "; ".join(format_validation_error(exc))
            kopf.event(
                _kopf_body(body), type="Warning", reason="InvalidSpec", message=problems[:1024]
            )
            raise kopf.PermanentError(f"invalid TierClass: {problems}") from exc
        # A new or changed tier changes what every model may plan on: look again now.
        await memo.state.refresh_now()
