"""The harness: a cluster on a chosen port, bootstrapped with CRDs and objects, a kubeconfig."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from tierwise_operator.emulator import ClientError, Cluster

from ..conftest import SAMPLES
from .conftest import CRDS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_cluster_serves_on_the_port_it_is_given_with_objects_preloaded(
    tmp_path: Path,
) -> None:
    port = _free_port()
    async with Cluster.start(
        crds=[CRDS], objects=[SAMPLES / "tierclasses.yaml"], port=port
    ) as cluster:
        assert cluster.url == f"http://127.0.0.1:{port}"
        names = {t["metadata"]["name"] for t in await cluster.client.list("tierclasses")}
        assert names == {"gpu-h100", "cpu-large", "nvme-offload"}
        config = yaml.safe_load(
            cluster.write_kubeconfig(tmp_path / "kc", namespace="ml").read_text()
        )
    assert config["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
    assert config["contexts"][0]["context"]["namespace"] == "ml"


async def test_bootstrapping_an_unknown_kind_fails_clearly() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ValueError, match=r"no resource serves example\.com/v1 Widget"):
        async with Cluster.start(objects=[widget]):
            pass


async def test_without_controllers_pods_are_only_stored() -> None:
    async with Cluster.start(controllers=False) as cluster:
        pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
        await cluster.client.create("pods", pod)
        await cluster.settle()
        stored = await cluster.client.get("pods", "p")
    assert "nodeName" not in stored["spec"]
    assert stored["status"] == {"phase": "Pending"}  # as the API server creates every pod


async def test_kmock_reactions_inject_faults_and_the_rest_is_still_served(cluster: Cluster) -> None:
    path = cluster.client.resource("configmaps").path("default", "flaky")
    cluster.emulator[f"get {path}"] << 503
    await cluster.client.create("configmaps", {"metadata": {"name": "flaky"}})
    with pytest.raises(ClientError) as info:
        await cluster.client.get("configmaps", "flaky")
    assert info.value.status == 503
    listed = await cluster.client.list("configmaps", "default")
    assert [c["metadata"]["name"] for c in listed] == ["flaky"]
