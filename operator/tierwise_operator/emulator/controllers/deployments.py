"""The Deployment controller: pods from the template, rolling updates, status.

Pods are owned by the Deployment directly (no ReplicaSets) and labelled with
`pod-template-hash`. A rolling update creates new pods within `maxSurge` and
deletes old ones only while the ready pods stay at or above `replicas -
maxUnavailable`; with `maxUnavailable: 0` a new pod must be Ready before an
old one goes. `Recreate` deletes every old pod before creating new ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from ..admission import now, random_suffix
from ..storage import Event
from .base import Controller
from .objects import (
    controlled_by,
    controller_of,
    key_of,
    owner_reference,
    pod_ready,
    terminating,
    with_condition,
)

HASH_LABEL = "pod-template-hash"
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


def _resolve(value: Any, replicas: int, *, round_up: bool) -> int:
    """An int-or-percent of a rolling update, as the real controller rounds it."""
    if isinstance(value, str) and value.endswith("%"):
        exact = replicas * float(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def rollout_limits(spec: dict[str, Any], replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable); both zero is refused by the real API, here it means 1."""
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


class DeploymentController(Controller):
    name = "deployment-controller"

    def wants(self, event: Event) -> list[Any]:
        if event.rtype.plural == "deployments" and event.rtype.group == "apps":
            return [key_of(event.object)]
        if event.rtype.plural == "pods" and event.rtype.group == "":
            ref = controller_of(event.object, "Deployment")
            return [(event.namespace, ref["name"])] if ref else []
        return []

    def resync(self) -> list[Any]:
        return [key_of(d) for d in self.api.list(self._deployments, copy=False)]

    @property
    def _deployments(self) -> Any:
        return self.api.registry.lookup("deployments.apps")

    @property
    def _pods(self) -> Any:
        return self.api.registry.lookup("pods")

    async def reconcile(self, key: tuple[str, str]) -> None:
        deployment = self.api.store.get(self._deployments, *key)
        if deployment is None or terminating(deployment):
            return
        spec = deployment["spec"]
        pods = [
            p for p in self.api.list(self._pods, key[0], copy=False) if controlled_by(p, deployment)
        ]
        live = [p for p in pods if not terminating(p)]
        current = template_hash(spec["template"])
        new = [p for p in live if p["metadata"].get("labels", {}).get(HASH_LABEL) == current]
        old = [p for p in live if p not in new]
        if not spec.get("paused"):
            self._scale(deployment, current, new, old)
        self._write_status(deployment, current)

    def _scale(
        self, deployment: dict[str, Any], current: str, new: list[Any], old: list[Any]
    ) -> None:
        spec = deployment["spec"]
        replicas = spec.get("replicas", 1)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(deployment, current, new, old, replicas)
            return
        surge, unavailable = rollout_limits(spec, replicas)
        room = replicas + surge - len(new) - len(old)
        for _ in range(max(0, min(room, replicas - len(new)))):
            self._create_pod(deployment, current)
        # Unready old pods serve nobody: they can always go.
        self._delete([p for p in old if not pod_ready(p)])
        ready_old = [p for p in old if pod_ready(p)]
        ready = len(ready_old) + sum(pod_ready(p) for p in new)
        self._delete(ready_old[: max(0, ready - (replicas - unavailable))])
        if not old and len(new) > replicas:
            surplus = sorted(new, key=pod_ready)[: len(new) - replicas]
            self._delete(surplus)

    def _recreate(
        self,
        deployment: dict[str, Any],
        current: str,
        new: list[Any],
        old: list[Any],
        replicas: int,
    ) -> None:
        if old:
            self._delete(old)
            return
        pods = self.api.list(self._pods, deployment["metadata"]["namespace"], copy=False)
        if any(controlled_by(p, deployment) and terminating(p) for p in pods):
            return  # Recreate waits for old pods to be gone
        for _ in range(replicas - len(new)):
            self._create_pod(deployment, current)
        self._delete(sorted(new, key=pod_ready)[: max(0, len(new) - replicas)])

    def _create_pod(self, deployment: dict[str, Any], current: str) -> None:
        template = deployment["spec"]["template"]
        meta = template.get("metadata") or {}
        name = f"{deployment['metadata']['name']}-{current}-{random_suffix()}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": {**meta.get("labels", {}), HASH_LABEL: current},
                "annotations": dict(meta.get("annotations", {})),
                "ownerReferences": [owner_reference(self._deployments, deployment)],
            },
            "spec": template.get("spec", {}),
        }
        self.api.create(self._pods, pod, deployment["metadata"]["namespace"], manager=self.name)

    def _delete(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            self.api.delete(self._pods, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _write_status(self, deployment: dict[str, Any], current: str) -> None:
        key = key_of(deployment)
        pods = [
            p for p in self.api.list(self._pods, key[0], copy=False) if controlled_by(p, deployment)
        ]
        live = [p for p in pods if not terminating(p)]
        status = deployment_status(deployment, current, live)
        if status != deployment.get("status"):
            deployment["status"] = status
            self.api.update(
                self._deployments, deployment, *key, subresource="status", manager=self.name
            )


def deployment_status(deployment: dict[str, Any], current: str, live: list[Any]) -> dict[str, Any]:
    """Status as the real controller reports it (zero counts omitted, as the API omits them)."""
    spec = deployment["spec"]
    replicas = spec.get("replicas", 1)
    updated = [p for p in live if p["metadata"].get("labels", {}).get(HASH_LABEL) == current]
    ready = sum(pod_ready(p) for p in live)
    _, unavailable = rollout_limits(spec, replicas)
    counts = {
        "replicas": len(live),
        "updatedReplicas": len(updated),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(0, replicas - ready),
    }
    status: dict[str, Any] = {"observedGeneration": deployment["metadata"]["generation"]}
    status.update({k: v for k, v in counts.items() if v})
    status["conditions"] = _conditions(
        deployment, ready >= replicas - unavailable, len(updated) == replicas == ready == len(live)
    )
    return status


def _conditions(deployment: dict[str, Any], available: bool, complete: bool) -> list[Any]:
    conditions = (deployment.get("status") or {}).get("conditions") or []
    stamp, name = now(), deployment["metadata"]["name"]
    if available:
        reason, message = "MinimumReplicasAvailable", "Deployment has minimum availability."
    else:
        reason = "MinimumReplicasUnavailable"
        message = "Deployment does not have minimum availability."
    conditions = with_condition(
        conditions, "Available", status=str(available), reason=reason, message=message, now=stamp
    )
    if complete:
        reason, message = (
            "NewReplicaSetAvailable",
            f'Deployment "{name}" has successfully progressed.',
        )
    else:
        reason, message = "ReplicaSetUpdated", f'Deployment "{name}" is progressing.'
    return with_condition(
        conditions, "Progressing", status="True", reason=reason, message=message, now=stamp
    )
