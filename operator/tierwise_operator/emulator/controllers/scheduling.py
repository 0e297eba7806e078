"""The scheduler: binds pending pods to the first node that fits, or marks them Unschedulable.

A node fits when the pod's nodeSelector matches its labels, the pod tolerates
its NoSchedule/NoExecute taints, and the requests of its pods (cpu, memory,
any extended resource such as nvidia.com/gpu, and the pod count) stay within
its allocatable. Affinity and spreading are not considered.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any

from ..admission import now
from ..storage import Event
from .base import Controller
from .objects import key_of, pod_finished, terminating

_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_FACTORS = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    None: Decimal(1),
}


def quantity(value: Any) -> Decimal:
    """A Kubernetes resource quantity (`500m`, `2Gi`, `1e9`) as a number."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a resource quantity: {value!r}")
    return Decimal(match[1]) * _FACTORS[match[2]]


def requests(pod: dict[str, Any]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {"pods": Decimal(1)}
    for container in pod.get("spec", {}).get("containers", []):
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, Decimal(0)) + quantity(value)
        for name, value in ((container.get("resources") or {}).get("limits") or {}).items():
            if name not in ((container.get("resources") or {}).get("requests") or {}):
                total[name] = total.get(name, Decimal(0)) + quantity(value)  # limit implies request
    return total


def tolerates(pod: dict[str, Any], taint: dict[str, Any]) -> bool:
    if taint.get("effect") not in {"NoSchedule", "NoExecute"}:
        return True
    for tol in pod.get("spec", {}).get("tolerations") or []:
        effect_ok = tol.get("effect") in (None, "", taint.get("effect"))
        if tol.get("operator") == "Exists":
            key_ok = tol.get("key") in (None, "", taint.get("key"))
        else:
            key_ok = tol.get("key") == taint.get("key") and tol.get("value") == taint.get("value")
        if effect_ok and key_ok:
            return True
    return False


@dataclasses.dataclass
class Fit:
    node: str | None
    reasons: list[str]


def choose_node(pod: dict[str, Any], nodes: list[Any], pods: list[Any]) -> Fit:
    reasons: list[str] = []
    wanted = requests(pod)
    for node in nodes:
        problem = _misfit(pod, wanted, node, pods)
        if problem is None:
            return Fit(node["metadata"]["name"], [])
        reasons.append(problem)
    return Fit(None, reasons)


def _misfit(
    pod: dict[str, Any], wanted: dict[str, Decimal], node: Any, pods: list[Any]
) -> str | None:
    labels = node["metadata"].get("labels") or {}
    selector = pod["spec"].get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return "didn't match Pod's node affinity/selector"
    if not all(tolerates(pod, t) for t in node.get("spec", {}).get("taints") or []):
        return "had untolerated taint"
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    used: dict[str, Decimal] = {}
    for other in pods:
        if other["spec"].get("nodeName") == node["metadata"]["name"] and not pod_finished(other):
            for name, amount in requests(other).items():
                used[name] = used.get(name, Decimal(0)) + amount
    for name, amount in wanted.items():
        if amount > 0 and used.get(name, Decimal(0)) + amount > quantity(allocatable.get(name, 0)):
            return f"Insufficient {name}"
    return None


class Scheduler(Controller):
    name = "default-scheduler"

    def wants(self, event: Event) -> list[Any]:
        if event.rtype.group != "":
            return []
        if event.rtype.plural == "pods" and event.type != "DELETED":
            pod = event.object
            return [] if pod["spec"].get("nodeName") or terminating(pod) else [key_of(pod)]
        if event.rtype.plural in {"pods", "nodes"}:
            return self.resync()  # capacity changed: retry pending pods
        return []

    def resync(self) -> list[Any]:
        pods = self.api.list(self.api.registry.lookup("pods"), copy=False)
        return [key_of(p) for p in pods if not p["spec"].get("nodeName") and not terminating(p)]

    async def reconcile(self, key: tuple[str, str]) -> None:
        rtype = self.api.registry.lookup("pods")
        pod = self.api.store.get(rtype, *key)
        if pod is None or pod["spec"].get("nodeName") or terminating(pod):
            return
        nodes = self.api.list(self.api.registry.lookup("nodes"), copy=False)
        fit = choose_node(pod, nodes, self.api.list(rtype, copy=False))
        if fit.node is not None:
            patch = {"spec": {"nodeName": fit.node}}
            pod = self.api.patch(
                rtype, *key, "application/merge-patch+json", patch, manager=self.name
            )
        status = _pending_status(pod, fit, len(nodes))
        if status != pod.get("status"):
            pod["status"] = status
            self.api.update(rtype, pod, *key, subresource="status", manager=self.name)


def _pending_status(pod: dict[str, Any], fit: Fit, node_count: int) -> dict[str, Any]:
    status = dict(pod.get("status") or {})
    status["phase"] = "Pending"
    if fit.node is not None:
        scheduled = {"type": "PodScheduled", "status": "True"}
    else:
        reasons = "; ".join(sorted(set(fit.reasons))) or "no nodes available"
        message = f"0/{node_count} nodes are available: {reasons}."
        scheduled = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
        }
    old = {c["type"]: c for c in status.get("conditions", [])}
    if old.get("PodScheduled", {}).get("status") == scheduled["status"]:
        scheduled["lastTransitionTime"] = old["PodScheduled"].get("lastTransitionTime", "")
    else:
        scheduled["lastTransitionTime"] = now()
    status["conditions"] = [scheduled]
    return status
