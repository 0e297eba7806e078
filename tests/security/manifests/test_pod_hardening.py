"""Runtime and profile pods hold no API token, profile Jobs are bounded, the API key is mounted."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tierwise_operator.api import InferenceModel, ModelSource, ModelVariant, Precision, TierClass
from tierwise_operator.children.profile_job import build_profile_job
from tierwise_operator.children.profile_resources import UNKNOWN_MODEL_MEMORY
from tierwise_operator.children.serving import Placement, build_deployment
from tierwise_operator.settings import Settings

K8S_VERSION = "1.30"
SETTINGS = Settings()


def _placement(tier: TierClass) -> Placement:
    return Placement(
        variant="primary",
        source_uri="builtin://all-minilm-l6-v2",
        precision=Precision.INT8,
        tier_class=tier,
        replicas=1,
        memory_request_bytes=2**30,
    )


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = obj["spec"]["template"]["spec"]
    return pod


def _with_parameters(model: InferenceModel, parameters: int | None) -> InferenceModel:
    spec = model.spec.model.model_copy(update={"parameters": parameters})
    return model.model_copy(update={"spec": model.spec.model_copy(update={"model": spec})})


@pytest.mark.parametrize("tier", ["cpu-large", "gpu-h100", "nvme-offload"])
def test_runtime_and_profile_pods_mount_no_service_account_token(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass], tier: str
) -> None:
    deployment = build_deployment(embedder, _placement(sample_tiers[tier]), SETTINGS)
    job = build_profile_job(embedder, sample_tiers[tier], "abcdef0123456789", SETTINGS)
    for obj in (deployment, job):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert _pod(obj)["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("tier", "device"), [("cpu-large", "cpu"), ("gpu-h100", "cuda")])
def test_profile_jobs_request_and_limit_memory_and_cpu_from_the_models_size(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass], tier: str, device: str
) -> None:
    def resources(parameters: int | None) -> dict[str, Any]:
        model = _with_parameters(embedder, parameters)
        job = build_profile_job(model, sample_tiers[tier], "abcdef0123456789", SETTINGS)
        found: dict[str, Any] = _pod(job)["containers"][0]["resources"]
        return found

    small, large, unknown = resources(22_000_000), resources(7_000_000_000), resources(None)
    for res in (small, large, unknown):
        assert {"cpu", "memory"} <= res["requests"].keys() <= res["limits"].keys()
        assert int(res["limits"]["memory"]) >= int(res["requests"]["memory"])
        assert ("nvidia.com/gpu" in res["limits"]) is (device == "cuda")
    # fp32 weights of 7B parameters are 28 GB: the request covers them, the small one not.
    assert int(large["requests"]["memory"]) > 28_000_000_000 > int(small["requests"]["memory"])
    assert int(unknown["requests"]["memory"]) == UNKNOWN_MODEL_MEMORY


def test_the_largest_variant_sizes_the_profile_job(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    big = ModelVariant(name="big", source=ModelSource(uri="builtin://x"), parameters=10**9)
    spec = embedder.spec.model.model_copy(update={"variants": [big]})
    model = embedder.model_copy(update={"spec": embedder.spec.model_copy(update={"model": spec})})
    job = build_profile_job(model, sample_tiers["cpu-large"], "abcdef0123456789", SETTINGS)
    assert int(_pod(job)["containers"][0]["resources"]["requests"]["memory"]) > 4 * 10**9


def test_the_api_key_secret_is_mounted_read_only_and_passed_to_the_runtime(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    settings = Settings.from_env({"TIERWISE_RUNTIME_API_KEY_SECRET": "runtime-key"})
    deployment = build_deployment(embedder, _placement(sample_tiers["cpu-large"]), settings)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    pod = _pod(deployment)
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "runtime-key"
    assert volume["secret"].get("optional") is not True  # no Secret: no pod, never an open one
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    args = pod["containers"][0]["args"]
    key_file = args[args.index("--api-key-file") + 1]
    assert key_file == f"{mount['mountPath']}/api-key"


def test_without_an_api_key_secret_nothing_is_mounted(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    pod = _pod(build_deployment(embedder, _placement(sample_tiers["cpu-large"]), SETTINGS))
    assert not [v for v in pod["volumes"] if "secret" in v]
    assert "--api-key-file" not in pod["containers"][0]["args"]


# The Pod Security Standard "restricted" rules that a pod spec can break (kubernetes.io/docs
# /concepts/security/pod-security-standards): the level each tier needs (docs/security.md).
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}  # fmt: skip


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    found = [f"{kind} volume {v['name']}" for v in pod.get("volumes", [])
             for kind in v if kind != "name" and kind not in RESTRICTED_VOLUMES]  # fmt: skip
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(flag)
    pod_ctx = pod.get("securityContext") or {}
    if pod_ctx.get("seccompProfile", {}).get("type") not in {"RuntimeDefault", "Localhost"}:
        found.append("seccompProfile")
    for c in pod["containers"] + pod.get("initContainers", []):
        ctx = c.get("securityContext") or {}
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            found.append(f"{c['name']}: runAsNonRoot")
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            found.append(f"{c['name']}: runAsUser 0")
        if ctx.get("allowPrivilegeEscalation") is not False or ctx.get("privileged"):
            found.append(f"{c['name']}: privilege escalation")
        caps = ctx.get("capabilities") or {}
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{c['name']}: capabilities")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            found.append(f"{c['name']}: hostPort")
    return found


@pytest.mark.parametrize("tier", ["cpu-large", "gpu-h100"])
def test_cpu_and_gpu_tier_pods_meet_the_restricted_pod_security_standard(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass], tier: str
) -> None:
    settings = Settings.from_env({"TIERWISE_RUNTIME_API_KEY_SECRET": "runtime-key"})
    deployment = build_deployment(embedder, _placement(sample_tiers[tier]), settings)
    job = build_profile_job(embedder, sample_tiers[tier], "abcdef0123456789", settings)
    assert restricted_violations(_pod(deployment)) == []
    assert restricted_violations(_pod(job)) == []


def test_offload_and_file_sources_need_privileged_for_their_hostpath_alone(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    offload = build_deployment(embedder, _placement(sample_tiers["nvme-offload"]), SETTINGS)
    assert restricted_violations(_pod(offload)) == ["hostPath volume offload"]
    on_node = Placement(**{**_placement(sample_tiers["cpu-large"]).__dict__,
                           "source_uri": "file:///mnt/models/minilm"})  # fmt: skip
    served = build_deployment(embedder, on_node, SETTINGS)
    assert restricted_violations(_pod(served)) == ["hostPath volume model-mnt-models-minilm"]
