"""Which profile Jobs a model needs, what they reported, and the merged profile (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .api import InferenceModel, ModelProfile, TierClass, TierKind
from .api.profile_codec import decode
from .children.profile_job import DEVICE_LABEL, PROFILE_KEY_LABEL, device_for
from .planner.candidates import allowed_tiers


def placement_tiers(model: InferenceModel, tiers: Iterable[TierClass]) -> dict[str, TierClass]:
    """For each device class to profile, the tier whose nodes run its Job.

    cpu covers both cpu and offload tiers (the same kernels, read from memory
    or a mapping); the cheapest node of a class is as representative as any.
    """
    chosen: dict[str, TierClass] = {}
    for tier in sorted(allowed_tiers(model, list(tiers)), key=_job_preference):
        chosen.setdefault(device_for(tier), tier)
    return dict(sorted(chosen.items()))


def _job_preference(tier: TierClass) -> tuple[int, Any, str]:
    # Profile CPU candidates on a cpu tier rather than an offload one when both
    # exist: offload nodes are often smaller.
    return (
        0 if tier.spec.kind is not TierKind.OFFLOAD else 1,
        tier.spec.pricing.per_node_hour,
        tier.name,
    )


class JobState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobResult:
    device: str
    state: JobState
    profile: ModelProfile | None = None
    message: str = ""


def job_result(job: dict[str, Any], pods: Sequence[dict[str, Any]]) -> JobResult:
    """What a profile Job says: running, or finished with the profile its pod wrote."""
    device = job["metadata"].get("labels", {}).get(DEVICE_LABEL, "cpu")
    status = job.get("status") or {}
    message = _termination_message(job, pods)
    if status.get("succeeded"):
        if message is None:
            return JobResult(device, JobState.FAILED, message="the profile pod left no result")
        try:
            return JobResult(device, JobState.SUCCEEDED, profile=decode(message))
        except ValueError as exc:
            return JobResult(device, JobState.FAILED, message=str(exc))
    if status.get("failed") or _job_condition(job, "Failed"):
        reason = message or _job_condition(job, "Failed") or "the profile Job failed"
        return JobResult(device, JobState.FAILED, message=reason[:500])
    return JobResult(device, JobState.RUNNING)


def _job_condition(job: dict[str, Any], type_: str) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return str(cond.get("message") or cond.get("reason") or type_)
    return None


def _termination_message(job: dict[str, Any], pods: Sequence[dict[str, Any]]) -> str | None:
    uid = job["metadata"].get("uid")
    for pod in pods:
        owners = pod["metadata"].get("ownerReferences") or []
        if uid and not any(o.get("uid") == uid for o in owners):
            continue
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"])
    return None


def jobs_for_key(jobs: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [j for j in jobs if j["metadata"].get("labels", {}).get(PROFILE_KEY_LABEL) == key]


def merge_profiles(profiles: Sequence[ModelProfile]) -> ModelProfile:
    """One profile from the per-device Jobs; each candidate keeps the machine it ran on."""
    if not profiles:
        raise ValueError("no profiles to merge")
    if len(profiles) == 1:
        return profiles[0]
    candidates = [
        cand if cand.machine else cand.model_copy(update={"machine": profile.machine})
        for profile in profiles
        for cand in profile.candidates
    ]
    first = profiles[0]
    return first.model_copy(update={"machine": None, "candidates": candidates})
