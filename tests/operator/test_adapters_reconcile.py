"""spec.adapters in a reconcile: a ConfigMap the replicas re-read (so edits leave the pod
template alone), AdaptersReady, and an Event naming each adapter that cannot be served."""

from __future__ import annotations

import json
from typing import Any

from tierwise_operator.api import (
    AdapterAccuracy,
    AdapterProfile,
    InferenceModel,
    Precision,
    TierClass,
    TierKind,
)
from tierwise_operator.reconcile import Actions

from .profiles import embedder_profile
from .test_reconcile import _body, _condition, _run


def _with(
    embedder: InferenceModel, names: list[str], failed: dict[str, str] | None = None
) -> InferenceModel:
    failed = failed or {}
    model = embedder.model_copy(deep=True)
    wire = model.to_wire()
    wire["spec"]["adapters"] = [{"name": n, "source": {"uri": f"pvc://lora/{n}"}} for n in names]
    profile = embedder_profile()
    profile.adapters = [
        AdapterProfile(
            name=n, uri=f"pvc://lora/{n}", resident_bytes=None if n in failed else 2**20,
            error=failed.get(n),
            accuracy=[AdapterAccuracy(precision=p, tier=t, delta=0.001)
                      for p in Precision for t in TierKind],
        )
        for n in names
    ]  # fmt: skip
    wire["spec"]["profile"] = profile.to_wire()
    return InferenceModel.model_validate(wire)


def _kind(actions: Actions, kind: str) -> dict[str, Any]:
    return next(m for m in actions.apply if m["kind"] == kind)


def _template(actions: Actions) -> dict[str, Any]:
    template: dict[str, Any] = _kind(actions, "Deployment")["spec"]["template"]
    return template


def test_adapters_are_listed_in_an_owned_configmap_the_pods_mount(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    actions = _run(_body(_with(embedder, ["support", "legal"])), sample_tiers)
    config_map = _kind(actions, "ConfigMap")
    assert config_map["metadata"]["ownerReferences"][0]["kind"] == "InferenceModel"
    listed = json.loads(config_map["data"]["adapters.json"])["adapters"]
    assert listed == [
        {"name": "support", "source": "pvc://lora/support"},
        {"name": "legal", "source": "pvc://lora/legal"},
    ]
    pod = _template(actions)["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--adapters") + 1] == "/etc/tierwise/adapters/adapters.json"
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    claim = next(
        v for v in pod["volumes"] if "persistentVolumeClaim" in v and v["name"] == "model-lora"
    )
    assert claim["persistentVolumeClaim"] == {"claimName": "lora", "readOnly": True}
    ready = _condition(actions, "AdaptersReady")
    assert (ready["status"], ready["reason"]) == ("True", "AdaptersServed")


def test_adding_or_removing_an_adapter_leaves_the_pod_template_unchanged(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    one = _run(_body(_with(embedder, ["support"])), sample_tiers)
    three = _run(_body(_with(embedder, ["support", "legal", "sales"])), sample_tiers)
    assert _template(one) == _template(three)
    assert _kind(one, "ConfigMap")["data"] != _kind(three, "ConfigMap")["data"]


def test_a_failed_adapter_is_a_condition_and_one_event_naming_it_while_the_base_serves(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    why = "rank 8 in the weights, 16 in adapter_config.json"
    model = _with(embedder, ["support", "legal"], failed={"legal": why})
    actions = _run(_body(model), sample_tiers)
    ready = _condition(actions, "AdaptersReady")
    assert (ready["status"], ready["reason"]) == ("False", "AdapterFailed")
    assert ready["message"] == f"adapter 'legal': {why}"
    warnings = [e for e in actions.events if e.reason == "AdapterFailed"]
    assert [e.message for e in warnings] == [f"adapter 'legal': {why}"]
    assert any(m["kind"] == "Deployment" for m in actions.apply)  # the base still serves
    assert _condition(actions, "Ready")["reason"] != "InvalidSpec"
    again = _run({**_body(model), "status": actions.status}, sample_tiers)
    assert [e for e in again.events if e.reason == "AdapterFailed"] == []


def test_models_without_adapters_get_no_configmap_and_no_condition(
    embedder: InferenceModel, sample_tiers: dict[str, TierClass]
) -> None:
    embedder.spec.profile = embedder_profile()
    actions = _run(_body(embedder), sample_tiers)
    assert {m["kind"] for m in actions.apply} == {"Deployment", "Service"}
    assert all(c["type"] != "AdaptersReady" for c in actions.status["conditions"])
    assert (
        "--adapters"
        not in _kind(actions, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    )
