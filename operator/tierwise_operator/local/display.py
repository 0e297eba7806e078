"""Render InferenceModels the way `kubectl get` shows them, from their printer columns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def condition(model: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (model.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def ready_replicas(model: dict[str, Any]) -> int:
    return int((model.get("status") or {}).get("readyReplicas") or 0)


def _age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def model_table(models: list[dict[str, Any]]) -> str:
    """NAME PRECISION TIER REPLICAS READY COST/1K AGE, like `kubectl get inferencemodels`."""
    header = ("NAME", "PRECISION", "TIER", "REPLICAS", "READY", "COST/1K", "AGE")
    rows = [header]
    for model in models:
        status = model.get("status") or {}
        rows.append(
            (
                model["metadata"]["name"],
                str(status.get("precision", "")),
                str(status.get("tierClass", "")),
                str(status.get("replicas", "")),
                str(condition(model, "Ready").get("status", "")),
                str((status.get("cost") or {}).get("per1kInferences", "")),
                _age(model["metadata"].get("creationTimestamp")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  " + "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
