"""kubectl against the emulator: apply (client and server side), get, -o yaml/wide, describe."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml

from tierwise_operator.emulator import Client, Cluster

from ..conftest import INVALID_SAMPLES, SAMPLES
from .conftest import deployment

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("kubectl") is None,
        reason="kubectl is not installed (Debian package `kubectl`)",
    ),
]


@pytest.fixture
def kubeconfig(cluster: Cluster, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


async def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    code = process.returncode or 0
    if check and code != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({code}): {err.decode()}")
    return code, out.decode(), err.decode()


async def _mark_served(client: Client, name: str) -> None:
    status = {
        "precision": "int8",
        "tierClass": "cpu-large",
        "replicas": 2,
        "cost": {"perHour": "0.81", "per1kInferences": "0.0040"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Serving"}],
    }
    await client.patch("inferencemodels", name, {"status": status}, subresource="status")


async def test_kubectl_apply_and_get_show_the_printer_columns(
    kubeconfig: Path, client: Client
) -> None:
    _, out, _ = await kubectl(
        kubeconfig,
        "apply",
        "-f",
        str(SAMPLES / "tierclasses.yaml"),
        "-f",
        str(SAMPLES / "ticket-embedder.yaml"),
    )
    assert "inferencemodel.tierwise.dev/ticket-embedder created" in out
    await _mark_served(client, "ticket-embedder")
    _, out, _ = await kubectl(kubeconfig, "get", "inferencemodels")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "PRECISION", "TIER", "REPLICAS", "READY", "COST/1K", "AGE"]
    assert row.split()[:6] == ["ticket-embedder", "int8", "cpu-large", "2", "True", "0.0040"]
    _, wide, _ = await kubectl(kubeconfig, "get", "inferencemodels", "-o", "wide")
    assert "VARIANT" in wide.splitlines()[0] and "Serving" in wide
    _, classes, _ = await kubectl(kubeconfig, "get", "tc")
    assert len(classes.splitlines()) == 4


async def test_kubectl_get_yaml_round_trips_the_object(kubeconfig: Path) -> None:
    await kubectl(kubeconfig, "apply", "-f", str(SAMPLES / "ticket-embedder.yaml"))
    _, out, _ = await kubectl(kubeconfig, "get", "inferencemodel", "ticket-embedder", "-o", "yaml")
    obj = yaml.safe_load(out)
    sample = yaml.safe_load((SAMPLES / "ticket-embedder.yaml").read_text())
    assert obj["spec"]["model"] == sample["spec"]["model"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]


async def test_kubectl_client_side_apply_patches_a_deployment(
    kubeconfig: Path, tmp_path: Path, client: Client
) -> None:
    body = deployment("web", replicas=1)
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    manifest = tmp_path / "web.yaml"
    manifest.write_text(yaml.safe_dump(body))
    await kubectl(kubeconfig, "apply", "-f", str(manifest))
    container["image"], container["env"] = "app:2", [{"name": "A", "value": "1"}]
    manifest.write_text(yaml.safe_dump(body))
    _, out, _ = await kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert "deployment.apps/web configured" in out
    live = (await client.get("deployments", "web"))["spec"]["template"]["spec"]["containers"][0]
    assert (live["image"], live["env"]) == ("app:2", [{"name": "A", "value": "1"}])


async def test_kubectl_server_side_apply_reports_conflicts(
    kubeconfig: Path, tmp_path: Path, client: Client
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(yaml.safe_dump(deployment("web", replicas=1)))
    _, out, _ = await kubectl(kubeconfig, "apply", "--server-side", "-f", str(manifest))
    assert "serverside-applied" in out
    await client.patch("deployments", "web", {"spec": {"replicas": 4}}, field_manager="hpa")
    manifest.write_text(yaml.safe_dump(deployment("web", replicas=2)))
    code, _, err = await kubectl(
        kubeconfig, "apply", "--server-side", "-f", str(manifest), check=False
    )
    assert code != 0 and 'conflict with "hpa"' in err and ".spec.replicas" in err
    await kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    assert (await client.get("deployments", "web"))["spec"]["replicas"] == 2


async def test_kubectl_shows_validation_errors(kubeconfig: Path) -> None:
    code, _, err = await kubectl(
        kubeconfig, "apply", "-f", str(INVALID_SAMPLES / "missing-budget.yaml"), check=False
    )
    assert code == 1
    assert 'The InferenceModel "no-budget" is invalid: spec.accuracyBudget: Required value' in err


async def test_kubectl_server_dry_run_validates_and_stores_nothing(
    kubeconfig: Path, client: Client
) -> None:
    bad = str(INVALID_SAMPLES / "replicas-min-above-max.yaml")
    code, _, err = await kubectl(kubeconfig, "apply", "--dry-run=server", "-f", bad, check=False)
    assert code == 1 and "spec.replicas: Invalid value" in err
    good = str(SAMPLES / "ticket-embedder.yaml")
    _, out, _ = await kubectl(kubeconfig, "apply", "--dry-run=server", "-f", good)
    assert "inferencemodel.tierwise.dev/ticket-embedder created (server dry run)" in out
    assert await client.list("inferencemodels", "default") == []


async def test_kubectl_apply_k_deploy_default_installs_every_object(
    kubeconfig: Path, client: Client
) -> None:
    # RBAC objects are stored (not enforced), so the whole install applies.
    _, out, _ = await kubectl(kubeconfig, "apply", "-k", str(SAMPLES.parent / "default"))
    for created in (
        "namespace/tierwise-system",
        "serviceaccount/tierwise-operator",
        "clusterrole.rbac.authorization.k8s.io/tierwise-operator",
        "clusterrolebinding.rbac.authorization.k8s.io/tierwise-operator",
        "deployment.apps/tierwise-operator",
    ):
        assert f"{created} created" in out
    role = await client.get("clusterroles", "tierwise-operator", None)
    assert all("secrets" not in rule["resources"] for rule in role["rules"])


async def test_kubectl_describe_lists_the_events_of_an_object(
    kubeconfig: Path, client: Client
) -> None:
    await kubectl(kubeconfig, "apply", "-f", str(SAMPLES / "ticket-embedder.yaml"))
    model = await client.get("inferencemodels", "ticket-embedder")
    event = {
        "metadata": {"generateName": "ticket-embedder-"},
        "type": "Normal",
        "reason": "Planned",
        "message": "int8 on cpu-large",
        "involvedObject": {
            "apiVersion": model["apiVersion"],
            "kind": "InferenceModel",
            "name": "ticket-embedder",
            "namespace": "default",
            "uid": model["metadata"]["uid"],
        },
    }
    await client.create("events", event)
    _, out, _ = await kubectl(kubeconfig, "describe", "inferencemodel", "ticket-embedder")
    assert "Name:         ticket-embedder" in out
    assert "Planned" in out and "int8 on cpu-large" in out


async def test_kubectl_wait_for_a_condition_and_delete(kubeconfig: Path, client: Client) -> None:
    await kubectl(kubeconfig, "apply", "-f", str(SAMPLES / "ticket-embedder.yaml"))
    waiting = asyncio.create_task(
        kubectl(
            kubeconfig,
            "wait",
            "--for=condition=Ready",
            "--timeout=20s",
            "inferencemodel/ticket-embedder",
        )
    )
    await asyncio.sleep(0.5)
    await _mark_served(client, "ticket-embedder")
    _, out, _ = await waiting
    assert "condition met" in out
    _, out, _ = await kubectl(kubeconfig, "delete", "inferencemodel", "ticket-embedder")
    assert "deleted" in out
    assert await client.list("inferencemodels") == []
