"""A compact text form of a ModelProfile that fits a Kubernetes termination message (4096 bytes).

The profile Job writes it to `/dev/termination-log`; the operator reads it back
from the pod's `status.containerStatuses[].state.terminated.message`. The form
is `tw1:` + base64(zlib(JSON with the wire field names)). When even that is too
big, detail the planner can live without is dropped in steps (sample counts,
p50s, the machine's CPU name, middle batch sizes) before giving up with an error.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from typing import Any

from .profile import ModelProfile

PREFIX = "tw1:"
LIMIT = 4096
"""Bytes Kubernetes keeps of a termination message."""


class ProfileTooLarge(ValueError):
    """Even the most compact form of the profile exceeds the termination-message limit."""


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _pack(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return PREFIX + base64.b64encode(zlib.compress(raw, 9)).decode()


def _drop_samples_and_p50(doc: dict[str, Any]) -> None:
    for cand in doc.get("candidates", []):
        for point in cand.get("latency", []):
            point.pop("samples", None)
            point["p50Ms"] = point["p99Ms"]


def _drop_machine_detail(doc: dict[str, Any]) -> None:
    if doc.get("machine"):
        doc["machine"]["cpu"] = doc["machine"]["cpu"][:24]
    doc.pop("createdAt", None)


def _keep_extreme_batches(doc: dict[str, Any]) -> None:
    for cand in doc.get("candidates", []):
        points = sorted(cand.get("latency", []), key=lambda p: p["batch"])
        cand["latency"] = points[:1] + points[-1:] if len(points) > 2 else points


_REDUCTIONS: list[Callable[[dict[str, Any]], None]] = [
    _drop_samples_and_p50,
    _drop_machine_detail,
    _keep_extreme_batches,
]


def encode(profile: ModelProfile, limit: int = LIMIT) -> str:
    """The shortest faithful form that fits `limit` bytes; ProfileTooLarge when none does."""
    doc = _round(profile.to_wire())
    text = _pack(doc)
    for reduce in _REDUCTIONS:
        if len(text.encode()) <= limit:
            return text
        reduce(doc)
        text = _pack(doc)
    if len(text.encode()) <= limit:
        return text
    raise ProfileTooLarge(
        f"the profile of {profile.model.uri} needs {len(text)} bytes in its most compact form, "
        f"more than the {limit} a termination message holds: profile fewer candidates"
    )


def decode(text: str) -> ModelProfile:
    """Parse what `encode` wrote; a clear ValueError for anything else."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise ValueError(f"not a tierwise profile (expected the {PREFIX!r} prefix): {text[:80]!r}")
    try:
        raw = zlib.decompress(base64.b64decode(text[len(PREFIX) :], validate=True))
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"corrupt profile message: {exc}") from exc
    return ModelProfile.model_validate(json.loads(raw))
