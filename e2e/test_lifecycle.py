"""The integration scenarios against a real API server: invalid specs, garbage collection by
ownerReferences, a name another object holds, and an operator restart that duplicates nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tierwise_operator.api import Duration

from .kubectl import Kubectl, condition, eventually
from .manifests import inference_model, with_reserved_variant_name
from .operators import TEST_SETTINGS, Operator
from .status import CHILDREN, children, events, planned, readiness

pytestmark = pytest.mark.usefixtures("operator")

Manifest = dict[str, Any]
REPLAN_SECONDS = float(Duration.parse(TEST_SETTINGS["TIERWISE_REPLAN_INTERVAL"]))


def test_invalid_spec_sets_invalidspec_and_creates_no_children(
    k: Kubectl, namespace: str, tier: str
) -> None:
    name = "reserved-name"
    # The CRD schema accepts a variant named `primary`; only the operator's models refuse it.
    k.apply(with_reserved_variant_name(inference_model(name, namespace, tier, profile=False)))

    def invalid() -> Manifest | None:
        model = k.get("inferencemodel", name)
        return model if condition(model, "Ready").get("reason") == "InvalidSpec" else None

    model = eventually(invalid, f"{name} to be Ready=False, InvalidSpec")
    ready = condition(model, "Ready")
    assert ready["status"] == "False"
    assert '"primary" names spec.model.source' in ready["message"]
    assert children(k, name) == {kind: [] for kind in CHILDREN}
    warnings = eventually(
        lambda: events(k, name, "InvalidSpec"), f"an InvalidSpec Event for {name}", timeout=30
    )
    assert warnings[0]["type"] == "Warning"


def test_deleting_a_model_collects_its_children(k: Kubectl, namespace: str, tier: str) -> None:
    name = "collected"
    k.apply(inference_model(name, namespace, tier, replicas=2))  # two replicas: a PDB too
    owned = ("deployment.apps", "service", "poddisruptionbudget.policy")
    eventually(
        lambda: all(k.get(kind, name) for kind in owned),
        f"{name}'s children",
        context=lambda: readiness(k, name),
    )
    k.delete("inferencemodel", name)
    # The cluster's garbage collector removes them, following their ownerReferences.
    eventually(
        lambda: not any(k.get(kind, name) for kind in owned), f"{name}'s children to be collected"
    )
    time.sleep(3 * REPLAN_SECONDS)  # several re-plan intervals: the operator must not revive them
    assert [kind for kind in owned if k.get(kind, name)] == []


def test_a_users_deployment_named_like_a_model_is_never_taken_over(
    k: Kubectl, namespace: str, tier: str
) -> None:
    name = "taken"
    theirs: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": 0,  # nothing to pull or run: only the object matters
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }
    k.apply(theirs)
    before = k.get("deployment.apps", name)
    assert before is not None
    k.apply(inference_model(name, namespace, tier))

    def conflicted() -> Manifest | None:
        model = k.get("inferencemodel", name)
        return model if condition(model, "Ready").get("reason") == "NameConflict" else None

    model = eventually(conflicted, f"{name} to be Ready=False, NameConflict")
    assert f"Deployment {namespace}/{name} already exists" in condition(model, "Ready")["message"]
    eventually(lambda: events(k, name, "NameConflict"), f"a NameConflict Event for {name}")
    k.delete("inferencemodel", name)
    time.sleep(3 * REPLAN_SECONDS)  # several rounds, and the garbage collector, had their turn
    after = k.get("deployment.apps", name)
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    assert not after["metadata"].get("ownerReferences")
    assert [c["name"] for c in after["spec"]["template"]["spec"]["containers"]] == ["web"]
    k.delete("deployment.apps", name)


def test_restarting_the_operator_duplicates_nothing(
    k: Kubectl, namespace: str, tier: str, operator: Operator
) -> None:
    name = "restarted"
    k.apply(inference_model(name, namespace, tier))
    eventually(
        lambda: planned(k, name),
        f"a plan and a Deployment for {name}",
        context=lambda: readiness(k, name),
    )
    before = children(k, name)
    operator.restart()
    # A spec change after the restart proves the new operator reconciled the model.
    patch = json.dumps({"spec": {"priority": 101}})
    k.run("patch", "inferencemodel", name, "--type=merge", f"--patch={patch}")
    eventually(
        lambda: planned(k, name),
        f"the restarted operator to reconcile {name}",
        context=lambda: readiness(k, name),
    )
    after = children(k, name)
    assert after == before
    assert len(after["deployments.apps"]) == len(after["services"]) == 1
