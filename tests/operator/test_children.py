"""The children an InferenceModel owns are built purely from its spec and the plan."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tierwise_operator.api import InferenceModel, Precision, TierClass
from tierwise_operator.children.profile_job import build_profile_job, job_name, profile_key
from tierwise_operator.children.serving import Placement, build_deployment, build_pdb, build_service
from tierwise_operator.settings import Settings

K8S_VERSION = "1.30"
SETTINGS = Settings()


def _placement(
    tier: TierClass, replicas: int = 2, precision: Precision = Precision.INT8
) -> Placement:
    return Placement(
        variant="primary",
        source_uri="builtin://all-minilm-l6-v2",
        precision=precision,
        tier_class=tier,
        replicas=replicas,
        memory_request_bytes=512 * 2**20,
        cpu_request=1.0,
        gpu=tier.spec.kind == "gpu",
        max_batch=16,
    )


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = manifest["spec"]["template"]["spec"]["containers"][0]
    return container


def _valid(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_cpu_deployment_runs_the_chosen_precision_on_cpu(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    deployment = build_deployment(embedder, _placement(sample_tiers["cpu-large"]), SETTINGS)
    _valid(deployment)
    args = _container(deployment)["args"]
    assert args[:1] == ["serve"]
    assert args[args.index("--precision") + 1] == "int8"
    assert args[args.index("--device") + 1] == "cpu"
    assert "--offload-dir" not in args
    assert args[args.index("--max-batch") + 1] == "16"
    assert _container(deployment)["resources"]["requests"] == {
        "memory": str(512 * 2**20),
        "cpu": "1000m",
    }
    spec = deployment["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"node.kubernetes.io/instance-type": "m7i.4xlarge"}
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["replicas"] == 2


def test_gpu_deployment_requests_a_device_and_tolerates_the_taint(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    deployment = build_deployment(
        embedder, _placement(sample_tiers["gpu-h100"], precision=Precision.FP16), SETTINGS
    )
    _valid(deployment)
    container = _container(deployment)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["image"] == SETTINGS.runtime_image_cuda
    assert container["args"][container["args"].index("--device") + 1] == "cuda"
    assert deployment["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_offload_deployment_maps_weights_from_its_own_folder_of_the_tier_path(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    deployment = build_deployment(embedder, _placement(sample_tiers["nvme-offload"]), SETTINGS)
    _valid(deployment)
    own = "/mnt/nvme/tierwise/support.ticket-embedder"
    args = _container(deployment)["args"]
    assert args[args.index("--offload-dir") + 1] == own
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    # Only the model's own folder is mounted, never the shared root other models use.
    assert volumes["offload"]["hostPath"] == {"path": own, "type": "DirectoryOrCreate"}
    assert {m["mountPath"] for m in _container(deployment)["volumeMounts"]
            if m["name"] == "offload"} == {own}  # fmt: skip


def test_children_are_owned_by_the_model_and_hardened(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    placement = _placement(sample_tiers["cpu-large"])
    children = [
        build_deployment(embedder, placement, SETTINGS),
        build_service(embedder, SETTINGS),
        build_pdb(embedder, placement),
    ]
    for child in children:
        assert child is not None
        _valid(child)
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "InferenceModel", embedder.metadata.uid, True)  # fmt: skip
        assert child["metadata"]["namespace"] == "support"
    container = _container(build_deployment(embedder, placement, SETTINGS))
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_single_replica_gets_no_pdb(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    assert build_pdb(embedder, _placement(sample_tiers["cpu-large"], replicas=1)) is None


def test_pvc_sources_mount_read_only_under_the_model_root(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    placement = Placement(variant="primary", source_uri="pvc://models/all-MiniLM-L6-v2",
                          precision=Precision.FP32, tier_class=sample_tiers["cpu-large"],
                          replicas=1, memory_request_bytes=2**30)  # fmt: skip
    deployment = build_deployment(embedder, placement, SETTINGS)
    _valid(deployment)
    mounts = {m["name"]: m for m in _container(deployment)["volumeMounts"]}
    assert mounts["model-models"] == {
        "name": "model-models",
        "mountPath": "/models/models",
        "readOnly": True,
    }


def test_profile_key_ignores_budgets_but_not_checkpoints(embedder: InferenceModel) -> None:
    key = profile_key(embedder)
    looser = embedder.model_copy(deep=True)
    looser.spec.accuracy_budget.max_degradation = looser.spec.accuracy_budget.max_degradation.of(
        0.05
    )
    looser.spec.replicas.max = 20
    assert profile_key(looser) == key
    moved = embedder.model_copy(deep=True)
    moved.spec.model.source.uri = "pvc://models/other"
    assert profile_key(moved) != key
    assert profile_key(embedder, eval_digest="abc") != key


@pytest.mark.parametrize(("tier", "device"), [("cpu-large", "cpu"), ("gpu-h100", "cuda")])
def test_profile_job_measures_on_a_node_of_the_tier(
    summarizer: InferenceModel, sample_tiers: dict[str, TierClass], tier: str, device: str
) -> None:
    job = build_profile_job(summarizer, sample_tiers[tier], "0123456789abcdef", SETTINGS)
    _valid(job)
    container = _container(job)
    assert container["args"][container["args"].index("--device") + 1] == device
    assert container["args"][container["args"].index("--eval") + 1] == "/eval/texts.jsonl"
    assert container["terminationMessagePolicy"] == "File"
    assert job["metadata"]["name"] == job_name(summarizer, device, "0123456789abcdef")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["nodeSelector"] == sample_tiers[tier].spec.node_selector


def test_job_names_fit_a_dns_label(summarizer: InferenceModel) -> None:
    long = summarizer.model_copy(deep=True)
    long.metadata.name = "x" * 60
    assert len(job_name(long, "cuda", "0123456789abcdef")) <= 63
