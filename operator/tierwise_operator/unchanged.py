"""Which of a reconcile's writes would change nothing, so the operator can leave them out.

A steady re-plan renders the same children and the same status as the round
before. A real API server stores no such write, but each one is still a request
it must decode, admit and compare, and at a 30 s interval a fleet of models
sends three per model per round. These decisions are pure: the handlers keep
the memory (`AppliedChildren`) and ask before each write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = Mapping[str, Any]
ModelKey = tuple[str, str]


def merge_patch_changes(current: Any, patch: Any) -> bool:
    """Whether a JSON merge patch (RFC 7386) would change `current`."""
    if not isinstance(patch, Mapping):
        return not same_json(current, patch)
    if not isinstance(current, Mapping):
        return True  # the patch replaces it with an object
    for key, value in patch.items():
        if value is None:
            if key in current:
                return True
        elif key not in current or merge_patch_changes(current[key], value):
            return True
    return False


def same_json(a: Any, b: Any) -> bool:
    """JSON equality. Numbers compare by value: the API server writes a float with no
    fraction back as an integer (Go's encoding), so `2` and `2.0` are the same figure."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b  # True == 1 in Python, not in JSON
    if isinstance(a, Mapping | list) or isinstance(b, Mapping | list):
        return False
    return bool(a == b)


def digest(manifest: Manifest) -> str:
    """A stable fingerprint of what is applied (key order does not matter)."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class AppliedChildren:
    """What tierwise last applied to each child of each model, and the version it got back.

    An apply can be left out when the manifest is the one last applied and the
    live child (from the operator's watch) is still at the version that apply
    returned: nobody has changed, deleted or relabelled it since. Anything
    else (a restart, someone's `kubectl edit`, the Deployment controller's
    status writes) sends the apply again, which is what repairs drift.
    """

    _by_model: dict[ModelKey, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def unchanged(self, manifest: Manifest, live: Manifest | None) -> bool:
        if live is None:
            return False
        seen = self._by_model.get(_owner(manifest), {}).get(manifest["kind"])
        version = (live.get("metadata") or {}).get("resourceVersion")
        return seen is not None and seen == (digest(manifest), version)

    def record(self, manifest: Manifest, result: Manifest | None) -> None:
        version = ((result or {}).get("metadata") or {}).get("resourceVersion")
        children = self._by_model.setdefault(_owner(manifest), {})
        if version is None:
            children.pop(manifest["kind"], None)
        else:
            children[manifest["kind"]] = (digest(manifest), str(version))

    def forget(self, namespace: str, name: str) -> None:
        """The model is gone, and its children with it."""
        self._by_model.pop((namespace, name), None)

    def __len__(self) -> int:
        return sum(len(children) for children in self._by_model.values())


def _owner(manifest: Manifest) -> ModelKey:
    meta = manifest["metadata"]
    owners = meta.get("ownerReferences") or [{}]
    return (meta.get("namespace") or "default", str(owners[0].get("name", meta["name"])))
