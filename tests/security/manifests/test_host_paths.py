"""A `file://` source mounts a node folder only under the prefixes the cluster admin lists."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tierwise_operator.api import InferenceModel
from tierwise_operator.children.hostpaths import source_problems
from tierwise_operator.manifests import parse_resource
from tierwise_operator.settings import Settings, SettingsError

from ...integration.conftest import NAMESPACE, Env, condition, embedder, eventually

ALLOWED = ("/mnt/models", "/srv/weights")


def model_from(uri: str, variant: str | None = None) -> InferenceModel:
    doc = embedder()
    doc["spec"]["model"]["source"]["uri"] = uri
    if variant is not None:
        doc["spec"]["model"]["variants"] = [{"name": "small", "source": {"uri": variant}}]
    parsed = parse_resource(doc)
    assert isinstance(parsed, InferenceModel)
    return parsed


@pytest.mark.parametrize(
    "uri",
    ["file:///mnt/models", "file:///mnt/models/minilm", "file:///srv/weights/a/b.gguf",
     "pvc://models/minilm", "builtin://all-minilm-l6-v2"],
)  # fmt: skip
def test_sources_under_an_allowed_prefix_or_not_on_the_node_pass(uri: str) -> None:
    assert source_problems(model_from(uri), ALLOWED) == []


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("file:///etc", "not under a hostPath prefix"),
        ("file:///var/lib/kubelet/pki", "not under a hostPath prefix"),
        ("file:///mnt/models-other/x", "not under a hostPath prefix"),  # a prefix, not a string
        ("file:///mnt/models/../../etc", "not a normalised absolute path"),
        ("file:///mnt/models/./x", "not a normalised absolute path"),
        ("file:///mnt//models/x", "not a normalised absolute path"),
    ],
)
def test_other_node_paths_are_refused_naming_the_field(uri: str, why: str) -> None:
    (problem,) = source_problems(model_from(uri), ALLOWED)
    assert problem.startswith("spec.model.source.uri: ") and why in problem


def test_a_variant_outside_the_prefixes_is_refused_naming_the_variant() -> None:
    problems = source_problems(model_from("pvc://models/a", variant="file:///root/.ssh"), ALLOWED)
    assert problems == [
        "spec.model.variants[0].source.uri: /root/.ssh is not under a hostPath prefix the "
        "cluster admin allows (/mnt/models, /srv/weights)"
    ]


def test_without_prefixes_every_file_source_is_refused() -> None:
    (problem,) = source_problems(model_from("file:///mnt/models/minilm"), ())
    assert "file:// sources are disabled" in problem and "TIERWISE_HOST_PATH_PREFIXES" in problem


@pytest.mark.parametrize("prefix", ["mnt/models", "/mnt/models/", "/mnt/../etc"])
def test_the_admins_prefixes_must_be_normalised_absolute_paths(prefix: str) -> None:
    with pytest.raises(SettingsError, match="TIERWISE_HOST_PATH_PREFIXES"):
        Settings.from_env({"TIERWISE_HOST_PATH_PREFIXES": prefix})


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


@pytest.mark.slow
async def test_a_model_mounting_etc_is_invalid_and_creates_nothing(env: Env) -> None:
    env.settings = dataclasses.replace(env.settings, host_path_prefixes=ALLOWED)
    doc = embedder()
    doc["spec"]["model"]["source"]["uri"] = "file:///etc"
    async with env.operator():
        await env.cluster.client.create("inferencemodels", doc)
        model = await env.wait_model(
            "ticket-embedder", lambda m: condition(m, "Ready").get("reason") == "InvalidSpec"
        )
        assert "spec.model.source.uri: /etc is not under" in condition(model, "Ready")["message"]
        assert await env.event("ticket-embedder", "InvalidSpec", "/etc")
        for kind in ("deployments", "jobs", "services"):
            assert await env.cluster.client.list(kind, NAMESPACE) == []


@pytest.mark.slow
async def test_a_model_under_an_allowed_prefix_is_profiled_and_served_read_only(env: Env) -> None:
    env.settings = dataclasses.replace(env.settings, host_path_prefixes=ALLOWED)
    doc = embedder()
    doc["spec"]["model"]["source"]["uri"] = "file:///mnt/models/minilm"
    async with env.operator():
        await env.cluster.client.create("inferencemodels", doc)
        deployments = await eventually(lambda: env.cluster.client.list("deployments", NAMESPACE))
        jobs = await eventually(lambda: env.cluster.client.list("jobs", NAMESPACE))
    for obj in [*deployments, *jobs]:
        pod = _pod_spec(obj)
        host = [v for v in pod["volumes"] if "hostPath" in v]
        assert [v["hostPath"]["path"] for v in host] == ["/mnt/models/minilm"]
        mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == host[0]["name"]]
        assert mounts == [{"name": host[0]["name"], "mountPath": "/mnt/models/minilm",
                           "readOnly": True}]  # fmt: skip
