"""Server-side apply and field ownership (`metadata.managedFields`), in a faithful subset.

Each write records which manager set which fields: an apply owns exactly the
fields of its configuration; other writes (create, update, patch) own the
fields they changed. An apply fails with 409 when it would change a field
another manager owns, unless `force` moves the field to it; fields a manager
stops applying are removed when no other manager owns them. Not covered:
per-version field sets, `x-kubernetes-map-type: atomic`, and ownership of
individual map keys inside atomic lists.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

from . import fieldsets
from .fieldsets import MISSING, Path
from .patching import strategic_merge
from .shapes import Shape


@dataclasses.dataclass
class Entry:
    manager: str
    operation: str  # "Apply" or "Update"
    fields: set[Path]
    api_version: str = ""
    subresource: str = ""


def read(obj: dict[str, Any] | None) -> list[Entry]:
    if not obj:
        return []
    entries = []
    for raw in obj.get("metadata", {}).get("managedFields") or []:
        entries.append(
            Entry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                fields=fieldsets.decode(raw.get("fieldsV1") or {}),
                api_version=raw.get("apiVersion", ""),
                subresource=raw.get("subresource", ""),
            )
        )
    return entries


def write(obj: dict[str, Any], entries: list[Entry]) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = []
    for entry in entries:
        if not entry.fields:
            continue
        item: dict[str, Any] = {
            "manager": entry.manager,
            "operation": entry.operation,
            "apiVersion": entry.api_version,
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": fieldsets.encode(entry.fields),
        }
        if entry.subresource:
            item["subresource"] = entry.subresource
        raw.append(item)
    obj.setdefault("metadata", {})["managedFields"] = raw


def _entry(entries: list[Entry], manager: str, operation: str, subresource: str) -> Entry:
    for entry in entries:
        if (entry.manager, entry.operation, entry.subresource) == (manager, operation, subresource):
            return entry
    entry = Entry(manager, operation, set(), subresource=subresource)
    entries.append(entry)
    return entry


def _without_meta(obj: dict[str, Any]) -> dict[str, Any]:
    """A view without managedFields, sharing everything else: only for reading."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    shape: Shape,
    subresource: str = "",
) -> None:
    """Give `manager` the fields a non-apply write changed; forget fields it removed."""
    entries = read(old)
    before = fieldsets.paths(_without_meta(old), shape) if old else set()
    after = fieldsets.paths(_without_meta(new), shape)
    changed = {p for p in after if not old or fieldsets.get(old, p) != fieldsets.get(new, p)}
    for entry in entries:
        entry.fields -= changed | (before - after)
    _entry(entries, manager, "Update", subresource).fields |= changed
    entry_api = new.get("apiVersion", "")
    for entry in entries:
        entry.api_version = entry.api_version or entry_api
    write(new, entries)


class ApplyConflict(Exception):
    """Fields owned by other managers would change: (manager, dotted field) pairs."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    shape: Shape,
    *,
    force: bool,
) -> dict[str, Any]:
    """The object after `manager` applies `config` to `live` (None: the object is new)."""
    entries = read(live)
    base = copy.deepcopy(_without_meta(live)) if live else {}
    applied = fieldsets.paths(config, shape)
    others = [e for e in entries if not (e.manager == manager and e.operation == "Apply")]
    conflicts = _conflicts(base, config, applied, others)
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for entry in others:
        entry.fields -= {p for p in applied if fieldsets.get(base, p) != fieldsets.get(config, p)}
    mine = _entry(entries, manager, "Apply", "")
    _remove_dropped(base, mine.fields - applied, others)
    mine.fields = applied
    mine.api_version = config.get("apiVersion", "")
    result: dict[str, Any] = strategic_merge(base, _plain_config(config), shape)
    write(result, entries)
    return result


def _plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """Apply configurations carry no patch directives; nulls mean "not set"."""
    if isinstance(config, dict):
        return {k: _plain_config(v) for k, v in config.items() if v is not None}
    return config


def _conflicts(
    live: dict[str, Any], config: dict[str, Any], applied: set[Path], others: list[Entry]
) -> list[tuple[str, str]]:
    found = []
    for entry in others:
        for path in sorted(applied & entry.fields):
            old, new = fieldsets.get(live, path), fieldsets.get(config, path)
            if old is not MISSING and old != new and not _is_node(old):
                found.append((entry.manager, _dotted(path)))
    return found


def _is_node(value: Any) -> bool:
    return isinstance(value, dict) and bool(value)


def _remove_dropped(live: dict[str, Any], dropped: set[Path], others: list[Entry]) -> None:
    owned_by_others = set().union(*(e.fields for e in others)) if others else set()
    for path in sorted(dropped, key=len):
        shared = any(p[: len(path)] == path for p in owned_by_others)
        if not shared:
            fieldsets.remove(live, path)


def _dotted(path: Path) -> str:
    out = ""
    for segment in path:
        out += "." + segment[2:] if segment.startswith("f:") else f"[{segment[2:]}]"
    return out
