"""An InferenceModel on a real cluster: planned, deployed on the labelled node, shown by kubectl."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tierwise_operator.settings import Settings

from .kubectl import Kubectl, condition, eventually
from .manifests import MODEL_LABEL, TIER_LABEL, inference_model
from .operators import Operator
from .status import planned, readiness

Manifest = dict[str, Any]
NAME = "embedder"
CONDITIONS = {
    "Ready",
    "Progressing",
    "Degraded",
    "Profiled",
    "AccuracyWithinBudget",
    "SLOMet",
    "MetricsAvailable",
    "InputsResolved",
}
MODEL_COLUMNS = ["NAME", "PRECISION", "TIER", "REPLICAS", "READY", "COST/1K", "AGE"]
TIER_COLUMNS = ["NAME", "KIND", "MEMORY", "PRICE", "AGE"]


@pytest.fixture(scope="module")
def served(cluster: Kubectl, namespace: str, tier: str, operator: Operator) -> Manifest:
    """The sample model, planned and deployed by the operator (shared by this module's tests)."""
    k = cluster.in_namespace(namespace)
    k.apply(inference_model(NAME, namespace, tier))
    return eventually(
        lambda: planned(k, NAME),
        f"a plan and a Deployment for {NAME}",
        context=lambda: readiness(k, NAME),
    )


def _args(deployment: Manifest) -> dict[str, str]:
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return {flag: value for flag, value in itertools.pairwise(args) if flag.startswith("--")}


def test_planned_model_runs_a_deployment_on_the_labelled_node(
    k: Kubectl, served: Manifest, run_id: str, runtime_image: str | None
) -> None:
    deployment = k.get("deployment", NAME)
    assert deployment is not None
    status = served["status"]
    args = _args(deployment)
    assert args["--precision"] == status["precision"]
    assert args["--device"] == "cpu"
    assert args["--model"] == "builtin://all-minilm-l6-v2"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {TIER_LABEL: run_id}
    container = pod["containers"][0]
    assert container["image"] == (runtime_image or Settings().runtime_image)
    assert container["resources"]["requests"]["memory"] == str(status["memory"]["requestBytes"])
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["replicas"] == status["replicas"]
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert owner["kind"] == "InferenceModel" and owner["controller"] is True
    assert owner["uid"] == served["metadata"]["uid"]


def test_planned_model_gets_a_service_it_owns(k: Kubectl, served: Manifest) -> None:
    service = k.get("service", NAME)
    assert service is not None
    assert service["spec"]["selector"][MODEL_LABEL] == NAME
    assert service["metadata"]["ownerReferences"][0]["uid"] == served["metadata"]["uid"]


def test_status_reports_the_plan_its_cost_and_every_condition(served: Manifest, tier: str) -> None:
    status = served["status"]
    assert status["tierClass"] == tier
    assert status["precision"] in {"fp32", "bf16", "int8"}
    assert status["replicas"] >= 1
    assert float(status["cost"]["per1kInferences"]) > 0
    assert float(status["cost"]["perHour"]) > 0
    assert status["decision"]["reason"] and status["decision"]["estimated"] is False
    assert {c["type"] for c in status["conditions"]} == CONDITIONS
    assert all(
        c["observedGeneration"] == served["metadata"]["generation"] for c in status["conditions"]
    )
    assert condition(served, "Profiled")["reason"] == "ProfileGiven"
    assert condition(served, "AccuracyWithinBudget")["status"] == "True"
    # The suite runs the operator without Prometheus: capacity from the Kubernetes API.
    assert condition(served, "MetricsAvailable")["reason"] == "PrometheusNotConfigured"


@pytest.mark.parametrize("resource", ["inferencemodels", "im"])
def test_kubectl_get_shows_the_printer_columns(k: Kubectl, served: Manifest, resource: str) -> None:
    def table_matches_status() -> list[str] | None:
        header, row = k.run("get", resource, NAME).out.splitlines()
        model = k.get("inferencemodel", NAME) or {}
        status = model.get("status") or {}
        expected = [
            NAME,
            status.get("precision"),
            status.get("tierClass"),
            str(status.get("replicas")),
            condition(model, "Ready").get("status"),
            (status.get("cost") or {}).get("per1kInferences"),
        ]
        assert header.split() == MODEL_COLUMNS
        return expected if row.split()[:6] == expected else None

    eventually(table_matches_status, "the table row to show the status", timeout=30)


def test_kubectl_get_tc_shows_kind_memory_and_price(
    cluster: Kubectl, tier: str, node: Manifest
) -> None:
    header, row = cluster.run("get", "tc", tier).out.splitlines()
    assert header.split() == TIER_COLUMNS
    memory = node["status"]["allocatable"]["memory"]
    assert row.split()[:4] == [tier, "cpu", memory, "0.81"]


def test_kubectl_wait_for_ready_returns_once_a_replica_serves(
    k: Kubectl, served: Manifest, runtime_image: str | None, run_id: str
) -> None:
    if runtime_image is None:
        image = Settings().runtime_image
        pytest.skip(
            f"the runtime image {image} is on no node, so serving pods cannot start: build it "
            f"(deploy/docker/Dockerfile.runtime) and `kind load docker-image {image}` "
            f"(k3d: `k3d image import {image}`), or pass --runtime-image"
        )
    result = k.run(
        "wait", "--for=condition=Ready", f"inferencemodel/{NAME}", "--timeout=300s", timeout=320
    )
    assert "condition met" in result.out
    model = k.get("inferencemodel", NAME) or {}
    assert model["status"]["readyReplicas"] >= 1
    pods = k.items("pods", selector=f"{MODEL_LABEL}={NAME}")
    ready = [p for p in pods if condition(p, "Ready").get("status") == "True"]
    assert ready and all(p["spec"]["nodeSelector"] == {TIER_LABEL: run_id} for p in ready)
