"""Installing what the suite needs into the cluster, and removing only what it added.

Every object is checked before it is applied: what already existed is left as
it was found, what this run created is deleted at the end (CRDs only when no
other InferenceModel or TierClass is left in the cluster).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from .kubectl import Kubectl, KubectlFailed
from .manifests import CRDS, REPO

Manifest = dict[str, Any]

OPERATOR_NAMESPACE = "tierwise-system"
OPERATOR_NAME = "tierwise-operator"
OPERATOR_ACCOUNT = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_NAME}"
CRD_NAMES = ("inferencemodels.tierwise.dev", "tierclasses.tierwise.dev")
RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}


@dataclass(frozen=True)
class Ref:
    """How kubectl names one object: `clusterrole.rbac.authorization.k8s.io`, name, namespace."""

    resource: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, doc: Manifest) -> Ref:
        api = str(doc["apiVersion"])
        group = api.split("/", maxsplit=1)[0] if "/" in api else ""
        resource = doc["kind"].lower() + (f".{group}" if group else "")
        return cls(resource, doc["metadata"]["name"], doc["metadata"].get("namespace"))

    def exists(self, k: Kubectl) -> bool:
        return k.in_namespace(self.namespace).get(self.resource, self.name) is not None


@dataclass
class Installed:
    """Objects this run created, deleted in reverse order by `remove()`."""

    k: Kubectl
    created: list[Ref] = field(default_factory=list)

    def remove(self) -> None:
        for ref in reversed(self.created):
            self.k.in_namespace(ref.namespace).delete(ref.resource, ref.name)
        self.created.clear()


def render(kustomization: str) -> list[Manifest]:
    """`kubectl kustomize` of a directory under deploy/ (client-side, needs no cluster)."""
    out = Kubectl().run("kustomize", str(REPO / kustomization)).out
    return [d for d in yaml.safe_load_all(out) if isinstance(d, dict)]


def apply_absent(k: Kubectl, docs: Iterable[Manifest]) -> Installed:
    """Create the objects that do not exist yet; leave existing ones untouched."""
    installed = Installed(k)
    missing = [d for d in docs if not Ref.of(d).exists(k)]
    if missing:
        k.apply(*missing)
        installed.created += [Ref.of(d) for d in missing]
    return installed


def install_crds(k: Kubectl) -> bool:
    """Apply crds/ (this checkout's schemas) and wait until served; True if they were new."""
    existed = all(Ref("customresourcedefinition", n).exists(k) for n in CRD_NAMES)
    k.run("apply", "--kustomize", str(CRDS))
    crds = [f"customresourcedefinition/{n}" for n in CRD_NAMES]
    k.run("wait", "--for=condition=Established", *crds, "--timeout=60s")
    return not existed


def remove_crds_if_unused(k: Kubectl) -> str:
    """Delete the CRDs unless InferenceModels or TierClasses remain; says what it did."""
    models = k.run("get", "inferencemodels", "--all-namespaces", "--output", "name").out.split()
    tiers = k.run("get", "tierclasses", "--output", "name").out.split()
    if models or tiers:
        return f"kept the CRDs: {len(models)} InferenceModel(s), {len(tiers)} TierClass(es) remain"
    k.delete("customresourcedefinition", *CRD_NAMES)
    return "deleted the CRDs"


def delete_models(k: Kubectl) -> None:
    """Delete the namespace's InferenceModels while the operator still runs, so it sees them
    go (tierwise adds no finalizer; another controller might)."""
    k.run("delete", "inferencemodels", "--all", "--timeout=120s", timeout=150)


def release_finalizers(k: Kubectl) -> None:
    """Drop finalizers an operator that is gone left on InferenceModels, so their namespace
    can be deleted."""
    patch = json.dumps({"metadata": {"finalizers": None}})
    for model in k.items("inferencemodels"):
        if model["metadata"].get("finalizers"):
            name = model["metadata"]["name"]
            k.run("patch", "inferencemodel", name, "--type=merge", f"--patch={patch}", check=False)


def with_overrides(docs: list[Manifest], image: str | None, env: dict[str, str]) -> list[Manifest]:
    """The rendered install with the operator's image and environment replaced where given."""
    out = copy.deepcopy(docs)
    for doc in out:
        if doc["kind"] != "Deployment" or doc["metadata"]["name"] != OPERATOR_NAME:
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        if image:
            container["image"] = image
        current = [e for e in container.get("env", []) if e["name"] not in env]
        container["env"] = current + [{"name": k, "value": v} for k, v in env.items()]
    return out


def install_operator(k: Kubectl, image: str | None, env: dict[str, str]) -> Installed:
    """`kubectl apply -k deploy/default` (with overrides) and wait for the Deployment."""
    deployment = Ref("deployment.apps", OPERATOR_NAME, OPERATOR_NAMESPACE)
    if deployment.exists(k):
        raise RuntimeError(
            f"tierwise is already installed ({OPERATOR_NAMESPACE}/{OPERATOR_NAME}); "
            "e2e --in-cluster installs its own: remove it first (kubectl delete -k deploy/default)"
        )
    docs = with_overrides(render("deploy/default"), image, env)
    new = [d for d in docs if d["kind"] != "CustomResourceDefinition" and not Ref.of(d).exists(k)]
    installed = Installed(k, [Ref.of(d) for d in new])
    try:
        k.apply(*docs)
        k.in_namespace(OPERATOR_NAMESPACE).run(
            "rollout", "status", f"deployment/{OPERATOR_NAME}", "--timeout=180s", timeout=200
        )
    except KubectlFailed as exc:
        installed.remove()
        image_in_use = _operator_image(docs)
        raise RuntimeError(
            f"installing the operator failed ({exc}); if its pod never became ready, is "
            f"{image_in_use} in the cluster? kind: `kind load docker-image {image_in_use}`; "
            f"k3d: `k3d image import {image_in_use}`; or pass --operator-image"
        ) from exc
    return installed


def _operator_image(docs: list[Manifest]) -> str:
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == OPERATOR_NAME:
            return str(doc["spec"]["template"]["spec"]["containers"][0]["image"])
    raise LookupError(f"deploy/default renders no Deployment {OPERATOR_NAME}")


def install_rbac(k: Kubectl) -> Installed:
    """The operator's Namespace, ServiceAccount, ClusterRole and binding from deploy/default."""
    return apply_absent(k, [d for d in render("deploy/default") if d["kind"] in RBAC_KINDS])


def schedulable_node(k: Kubectl) -> Manifest:
    """A Ready node that takes ordinary pods, workers before control-plane nodes."""
    candidates = [n for n in k.items("nodes") if _takes_pods(n)]
    if not candidates:
        raise RuntimeError("no Ready, untainted, schedulable node to run test pods on")
    return sorted(candidates, key=_is_control_plane)[0]


def _takes_pods(node: Manifest) -> bool:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    tainted = any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or [])
    return ready and not tainted and not spec.get("unschedulable")


def _is_control_plane(node: Manifest) -> bool:
    return "node-role.kubernetes.io/control-plane" in (node["metadata"].get("labels") or {})


@dataclass
class NodeLabel:
    """A label the suite puts on a node, and puts back as it was found."""

    k: Kubectl
    node: str
    key: str
    value: str
    previous: str | None = None

    def set(self) -> None:
        found = self.k.get("node", self.node) or {}
        self.previous = (found.get("metadata", {}).get("labels") or {}).get(self.key)
        self.k.run("label", "node", self.node, f"{self.key}={self.value}", "--overwrite")

    def restore(self) -> None:
        restored = f"{self.key}-" if self.previous is None else f"{self.key}={self.previous}"
        self.k.run("label", "node", self.node, restored, "--overwrite")
