"""Writes that would change nothing are recognised, and nothing else is."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tierwise_operator.unchanged import AppliedChildren, merge_patch_changes, same_json


def merge(current: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(current) if isinstance(current, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", 1.5])
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner),
    max_leaves=8,
)


@given(json_values, json_values)
def test_a_patch_changes_the_object_exactly_when_merging_it_does(current: Any, patch: Any) -> None:
    assert merge_patch_changes(current, patch) == (not same_json(merge(current, patch), current))


def test_status_read_back_from_the_server_is_the_status_written() -> None:
    ready = [{"type": "Ready", "status": "True"}]
    written = {"replicas": 2, "costPerHour": 2.0, "conditions": ready}
    read_back = {"replicas": 2, "costPerHour": 2, "conditions": [dict(ready[0])], "other": "kept"}
    assert not merge_patch_changes(read_back, written)
    assert merge_patch_changes(read_back, {**written, "replicas": 3})
    assert merge_patch_changes(read_back, {"other": None})
    assert not merge_patch_changes(read_back, {"absent": None})
    assert merge_patch_changes({"ok": 1}, {"ok": True})  # JSON has no 1 == true


def deployment(replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "m", "namespace": "ns",
                     "ownerReferences": [{"kind": "InferenceModel", "name": "m"}]},
        "spec": {"replicas": replicas},
    }  # fmt: skip


def live(version: str) -> dict[str, Any]:
    return {"metadata": {"name": "m", "namespace": "ns", "resourceVersion": version}}


def test_an_apply_is_left_out_only_while_manifest_and_live_version_are_those_recorded() -> None:
    applied = AppliedChildren()
    assert not applied.unchanged(deployment(), live("7"))  # never applied by this process
    applied.record(deployment(), live("7"))
    assert applied.unchanged(deployment(), live("7"))
    assert not applied.unchanged(deployment(replicas=2), live("7"))  # a new plan
    assert not applied.unchanged(deployment(), live("8"))  # someone changed it since
    assert not applied.unchanged(deployment(), None)  # someone deleted it
    applied.forget("ns", "m")
    assert not applied.unchanged(deployment(), live("7")) and len(applied) == 0
