"""Ensure a measured profile: inline, already measured, or Jobs to launch and read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api import InferenceModel, ModelProfile, TierClass
from ..children.profile_job import build_profile_job, profile_key
from ..profiling import JobState, job_result, jobs_for_key, merge_profiles, placement_tiers
from ..settings import Settings

Manifest = dict[str, Any]


@dataclass
class ProfileOutcome:
    """Where the planner's figures come from this round, and the Profiled condition."""

    profile: ModelProfile | None
    key: str | None
    ready: bool
    reason: str
    message: str
    new: bool = False
    """True when the profile was read back from its Jobs just now."""
    create: list[Manifest] = field(default_factory=list)


def ensure_profile(
    model: InferenceModel,
    tiers: Sequence[TierClass],
    jobs: Sequence[Manifest],
    pods: Sequence[Manifest],
    settings: Settings,
    *,
    eval_digest: str,
    eval_problem: str | None,
    tiers_with_nodes: set[str] | None = None,
) -> ProfileOutcome:
    """Where this round's figures come from; launches what is missing.

    Device classes whose TierClasses have no node (when the node list is known)
    are not profiled: nothing could run their Job. Results of finished Jobs
    are used as soon as they arrive, while the others still run.
    """
    if model.spec.profile is not None:
        return ProfileOutcome(
            model.spec.profile,
            None,
            True,
            "ProfileGiven",
            "the profile is given inline in spec.profile",
        )
    key = profile_key(model, eval_digest)
    status = model.status
    if status is not None and status.profile_key == key and status.profile is not None:
        return ProfileOutcome(
            status.profile, key, True, "ProfileMeasured", _summary(status.profile)
        )
    if eval_problem:
        return ProfileOutcome(None, key, False, "EvalSetMissing", eval_problem)
    placeable = [t for t in tiers if tiers_with_nodes is None or t.name in tiers_with_nodes]
    wanted = placement_tiers(model, placeable)
    if not wanted:
        return ProfileOutcome(
            None,
            key,
            False,
            "NoTierClass",
            "no TierClass is allowed for this model, so nothing to profile on",
        )
    mine = jobs_for_key(jobs, key)
    results = {}
    for job in mine:
        result = job_result(job, pods)
        results[result.device] = result
    create = [
        build_profile_job(model, tier, key, settings)
        for device, tier in wanted.items()
        if device not in results
    ]
    failed = [r for r in results.values() if r.state is JobState.FAILED]
    if failed:
        detail = "; ".join(f"{r.device}: {r.message}" for r in failed)
        return ProfileOutcome(
            None, key, False, "ProfileFailed", f"{detail} (delete the Job to retry)", create=create
        )
    done = {d: r.profile for d, r in results.items() if r.state is JobState.SUCCEEDED and r.profile}
    if not create and len(done) == len(wanted):
        merged = merge_profiles(list(done.values()))
        return ProfileOutcome(merged, key, True, "ProfileMeasured", _summary(merged), new=True)
    waiting = sorted(d for d in wanted if d not in done)
    partial = merge_profiles(list(done.values())) if done else None
    measured = f"measured on {', '.join(sorted(done))}; " if done else ""
    return ProfileOutcome(
        partial,
        key,
        False,
        "Profiling",
        f"{measured}measuring on {', '.join(waiting)}; the rest is estimated meanwhile",
        create=create,
    )


def _summary(profile: ModelProfile) -> str:
    measured = [c for c in profile.candidates if not c.error]
    tiers = sorted({str(c.tier) for c in measured})
    return f"{len(measured)} candidates measured ({', '.join(tiers)})"
