"""The operator knows which profile Jobs a model needs and reads their results back."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise_operator.api import InferenceModel, MachineInfo, TierClass
from tierwise_operator.api.profile_codec import encode
from tierwise_operator.children.profile_job import build_profile_job
from tierwise_operator.planner.candidates import allowed_tiers
from tierwise_operator.profiling import (
    JobState,
    job_result,
    jobs_for_key,
    merge_profiles,
    placement_tiers,
)
from tierwise_operator.settings import Settings

from ..test_profile_codec import make_profile


def test_one_job_per_device_class_placed_on_the_cheapest_fitting_tier(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    chosen = placement_tiers(embedder, sample_tiers.values())
    assert {device: tier.name for device, tier in chosen.items()} == {
        "cpu": "cpu-large",
        "cuda": "gpu-h100",
    }


def test_only_allowed_tiers_are_profiled(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    embedder.spec.tier_classes = ["nvme-offload"]
    assert [t.name for t in allowed_tiers(embedder, list(sample_tiers.values()))] == [
        "nvme-offload"
    ]
    assert set(placement_tiers(embedder, sample_tiers.values())) == {"cpu"}


def _job(model: InferenceModel, tier: TierClass, status: dict[str, Any]) -> dict[str, Any]:
    job = build_profile_job(model, tier, "k" * 16, Settings())
    job["metadata"]["uid"] = "job-uid"
    job["status"] = status
    return job


def _pod(message: str | None) -> dict[str, Any]:
    terminated = {"exitCode": 0, "reason": "Completed"}
    if message is not None:
        terminated["message"] = message
    return {
        "metadata": {"ownerReferences": [{"kind": "Job", "uid": "job-uid"}]},
        "status": {"containerStatuses": [{"name": "profile", "state": {"terminated": terminated}}]},
    }


def test_a_succeeded_job_yields_the_profile_from_the_termination_message(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    profile = make_profile(variants=1)
    result = job_result(_job(embedder, sample_tiers["cpu-large"], {"succeeded": 1}),
                        [_pod(encode(profile))])  # fmt: skip
    assert result.state is JobState.SUCCEEDED
    assert result.device == "cpu"
    assert result.profile is not None
    assert len(result.profile.candidates) == len(profile.candidates)


@pytest.mark.parametrize(
    ("status", "message", "state", "why"),
    [
        ({}, None, JobState.RUNNING, ""),
        ({"succeeded": 1}, None, JobState.FAILED, "left no result"),
        ({"succeeded": 1}, "garbage", JobState.FAILED, "not a tierwise profile"),
        ({"failed": 1}, "model not found: pvc://models/x", JobState.FAILED, "model not found"),
        ({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                          "message": "Job was active longer than specified deadline"}]},
         None, JobState.FAILED, "deadline"),
    ],
)  # fmt: skip
def test_job_outcomes_are_read_with_their_reason(
    embedder: InferenceModel,
    sample_tiers: dict[str, TierClass],
    status: dict[str, Any],
    message: str | None,
    state: JobState,
    why: str,
) -> None:
    result = job_result(_job(embedder, sample_tiers["cpu-large"], status), [_pod(message)])
    assert result.state is state
    assert why in result.message


def test_jobs_are_matched_by_profile_key(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    job = _job(embedder, sample_tiers["cpu-large"], {})
    assert jobs_for_key([job], "k" * 16) == [job]
    assert jobs_for_key([job], "other") == []


def test_merged_profiles_keep_each_candidates_machine() -> None:
    cpu = make_profile(1).model_copy(update={"machine": MachineInfo(cpu="Xeon", threads=16)})
    gpu = make_profile(1).model_copy(
        update={"machine": MachineInfo(cpu="EPYC", threads=32, gpu="NVIDIA H100")}
    )
    merged = merge_profiles([cpu, gpu])
    assert len(merged.candidates) == len(cpu.candidates) + len(gpu.candidates)
    machines = {c.machine.gpu for c in merged.candidates if c.machine}
    assert machines == {None, "NVIDIA H100"}
    with pytest.raises(ValueError, match="no profiles"):
        merge_profiles([])
