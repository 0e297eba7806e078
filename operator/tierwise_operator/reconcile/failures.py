"""Failure feedback: replicas that were OOMKilled or crash-loop mark their candidate failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..api import FailedCandidate
from ..children.common import CANDIDATE_ANNOTATION, COMPONENT_LABEL
from ..children.serving import COMPONENT as SERVING
from ..conditions import rfc3339

Manifest = dict[str, Any]


def pod_failure(pod: Manifest) -> str | None:
    """Why a serving pod failed at its candidate, or None while it is healthy."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        for state_key in ("state", "lastState"):
            terminated = (status.get(state_key) or {}).get("terminated") or {}
            if terminated.get("reason") == "OOMKilled":
                return "OOMKilled: the replica outgrew its memory request"
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            detail = (waiting.get("message") or "").strip()
            restarts = status.get("restartCount", 0)
            return f"CrashLoopBackOff after {restarts} restarts{': ' + detail if detail else ''}"
    return None


def update_failed(
    existing: Sequence[FailedCandidate],
    pods: Sequence[Manifest],
    now: datetime,
    backoff: timedelta,
) -> tuple[list[FailedCandidate], list[FailedCandidate]]:
    """Still-active failures plus new ones from the pods; returns (all active, newly failed)."""
    active = [f for f in existing if datetime.fromisoformat(f.retry_after) > now]
    known = {f.candidate for f in active}
    fresh: list[FailedCandidate] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(COMPONENT_LABEL) != SERVING:
            continue
        candidate = (meta.get("annotations") or {}).get(CANDIDATE_ANNOTATION)
        reason = pod_failure(pod)
        if not candidate or reason is None or candidate in known:
            continue
        known.add(candidate)
        fresh.append(
            FailedCandidate(
                candidate=candidate,
                reason=reason,
                at=rfc3339(now),
                retry_after=rfc3339(now + backoff),
            )
        )
    return active + fresh, fresh
