"""The kustomizations render, every object is valid Kubernetes, and the operator's RBAC is tight."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tierwise_operator.children.common import selector_labels
from tierwise_operator.crd.structural import check_structural
from tierwise_operator.crd.validate import validate_object
from tierwise_operator.manifests import load_resources

from .conftest import REPO, SAMPLES

K8S_VERSION = "1.30"
# Kinds whose schemas come from CRDs outside Kubernetes (kopf, Prometheus Operator).
THIRD_PARTY = {"ClusterKopfPeering", "ServiceMonitor", "PodMonitor", "PrometheusRule"}


def render(kustomization: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl not found: `make check` installs it (scripts/system-deps.sh)"
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / kustomization)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def default_install() -> list[dict[str, Any]]:
    return render("default")


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.mark.parametrize(
    "kustomization", ["default", "ha", "namespaced", "network-policy", "gateway"]
)
def test_every_rendered_object_is_valid_kubernetes(kustomization: str) -> None:
    objects = render(kustomization)
    assert objects
    for obj in objects:
        if obj["kind"] in THIRD_PARTY:
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_default_installs_crds_and_operator(default_install: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in default_install)
    assert kinds.count("CustomResourceDefinition") == 2
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                 "Deployment", "Service"):  # fmt: skip
        assert kind in kinds
    for crd in (o for o in default_install if o["kind"] == "CustomResourceDefinition"):
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert check_structural(schema) == []


def test_cluster_role_names_exact_resources_and_never_secrets(
    default_install: list[dict[str, Any]],
) -> None:
    role = _one(default_install, "ClusterRole")
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {field}: {rule}"
        assert "secrets" not in rule["resources"]
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert ("tierwise.dev", "inferencemodels/status") in granted
    assert ("apps", "deployments") in granted
    binding = _one(default_install, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == "tierwise-operator"


def test_operator_runs_unprivileged_with_limits(default_install: list[dict[str, Any]]) -> None:
    deployment = _one(default_install, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["metadata"]["namespace"] == "tierwise-system"


def test_ha_runs_two_peered_replicas() -> None:
    objects = render("ha")
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "--peering=tierwise" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    crd = next(o for o in objects if o["kind"] == "CustomResourceDefinition"
               and o["spec"]["group"] == "kopf.dev")  # fmt: skip
    peering = _one(objects, "ClusterKopfPeering")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert validate_object(peering, schema) == []


def test_monitoring_scrapes_runtime_pods_and_alerts_on_model_conditions() -> None:
    objects = render("prometheus")
    rules = _one(objects, "PrometheusRule")
    alerts = {r["alert"] for g in rules["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert alerts >= {"TierwiseSLOBreach", "TierwiseAccuracyOverBudget", "TierwiseNoFeasiblePlan"}
    monitor = _one(objects, "PodMonitor")
    labels = {r["targetLabel"] for r in monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert "tierwise_dev_model" in labels


@pytest.mark.parametrize(
    "name", ["Dockerfile.operator", "Dockerfile.runtime", "Dockerfile.runtime-cuda"]
)
def test_images_run_as_non_root(name: str) -> None:
    text = (REPO / "deploy" / "docker" / name).read_text()
    assert "USER 65532" in text
    if name == "Dockerfile.operator":
        assert "torch" not in text.split("FROM python:3.11-slim\n")[-1]


def test_scrape_config_is_valid_yaml_with_both_jobs() -> None:
    config = yaml.safe_load(Path(REPO / "deploy/prometheus/scrape-config.yaml").read_text())
    assert {j["job_name"] for j in config["scrape_configs"]} == {
        "tierwise-runtime",
        "tierwise-operator",
        "tierwise-gateway",
    }


WRITES = {"create", "update", "patch", "delete"}
CHILDREN = {("apps", "deployments"), ("", "services"), ("policy", "poddisruptionbudgets"),
            ("batch", "jobs")}  # fmt: skip


def _grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_configmaps_are_read_by_name_and_never_listed(
    default_install: list[dict[str, Any]],
) -> None:
    verbs = {v for g, r, v in _grants(_one(default_install, "ClusterRole")) if r == "configmaps"}
    # get: eval sets, by name; create and patch: the adapters list it applies per model.
    assert verbs == {"get", "create", "patch"}


def test_namespaced_install_writes_only_in_the_namespaces_it_watches(
    default_install: list[dict[str, Any]],
) -> None:
    objects = render("namespaced")
    cluster = _grants(_one(objects, "ClusterRole"))
    # Cluster-wide it only reads, and posts Events (a TierClass's go to `default`).
    assert {r for _, r, v in cluster if v not in {"get", "list", "watch"}} == {"events"}
    roles = [o for o in objects if o["kind"] == "Role"]
    bindings = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "RoleBinding"}
    env = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    watched = next(e["value"] for e in env["env"] if e["name"] == "TIERWISE_NAMESPACES")
    assert "--all-namespaces" not in env["args"]
    assert sorted(watched.split(",")) == sorted(r["metadata"]["namespace"] for r in roles)
    for role in roles:
        granted = _grants(role)
        assert {(g, r) for g, r, v in granted if v in WRITES} >= CHILDREN
        assert {v for g, r, v in granted if r == "configmaps"} == {"get", "create", "patch"}
        binding = bindings[role["metadata"]["namespace"]]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"][0] == {
            "kind": "ServiceAccount",
            "name": "tierwise-operator",
            "namespace": "tierwise-system",
        }
        # Cluster-wide reads plus the namespace's Role allow all the default install allows.
        assert cluster | granted == _grants(_one(default_install, "ClusterRole"))


def test_network_policy_admits_only_the_gateway_prometheus_and_named_client_namespaces() -> None:
    (policy,) = render("network-policy")
    models, _ = load_resources([SAMPLES / "ticket-embedder.yaml"])
    runtime = selector_labels(models[0], "serving")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= runtime.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    # Every peer is pinned to namespaces a tenant cannot label itself into.
    assert all("namespaceSelector" in peer for peer in sources)
    pods = [peer.get("podSelector", {}).get("matchLabels", {}) for peer in sources]
    assert {"app.kubernetes.io/name": "tierwise-gateway"} in pods
    assert {"app.kubernetes.io/name": "prometheus"} in pods
    for rule in policy["spec"]["ingress"]:
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_gateway_is_optional_and_installs_with_its_own_least_privilege_role(
    default_install: list[dict[str, Any]],
) -> None:
    assert not [o for o in default_install if "gateway" in o["metadata"]["name"]]
    objects = render("gateway")
    role = _named(objects, "ClusterRole", "tierwise-gateway")
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    # It reads models and pods, and writes one thing: the demand annotation (a patch).
    assert granted == {
        ("tierwise.dev", "inferencemodels", v) for v in ("get", "list", "watch", "patch")
    } | {("", "pods", v) for v in ("get", "list", "watch")}
    binding = _named(objects, "ClusterRoleBinding", "tierwise-gateway")
    assert binding["subjects"][0] == {
        "kind": "ServiceAccount", "name": "tierwise-gateway", "namespace": "tierwise-system",
    }  # fmt: skip
    deployment = _named(objects, "Deployment", "tierwise-gateway")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][0] == "gateway"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == "tierwise-gateway"
    service = _named(objects, "Service", "tierwise-gateway")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "tierwise-gateway"}


def test_gateway_keys_come_from_a_required_secret(tmp_path: Path) -> None:
    deploy = Path(os.path.relpath(REPO / "deploy", tmp_path))  # kustomize wants relative paths
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(deploy / "default")],
        "components": [str(deploy / "components/gateway"), str(deploy / "components/gateway-keys")],
    }))  # fmt: skip
    kubectl = shutil.which("kubectl")
    assert kubectl
    out = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    objects = [d for d in yaml.safe_load_all(out) if d]
    pod = _named(objects, "Deployment", "tierwise-gateway")["spec"]["template"]["spec"]
    assert "--keys-file=/etc/tierwise-gateway/keys.yaml" in pod["containers"][0]["args"]
    (volume,) = pod["volumes"]
    assert volume["secret"] == {"secretName": "tierwise-gateway-keys"}  # not optional
    for obj in objects:
        if obj["kind"] not in THIRD_PARTY:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
