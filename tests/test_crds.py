"""CRDs are generated from the API models, stay structural, and carry kubectl's view of the API."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tierwise_operator.cli import main
from tierwise_operator.crd.generate import ALL_CRDS, INFERENCE_MODEL, TIER_CLASS, build_crd, render
from tierwise_operator.crd.structural import check_structural

from .conftest import REPO


@pytest.mark.parametrize("crd", ALL_CRDS, ids=lambda c: c.kind)
def test_committed_crd_matches_the_models(crd: Any) -> None:
    committed = (REPO / "crds" / crd.filename).read_text()
    assert committed == render(crd), "crds/ drifted from the API models: run `tierwise crds`"


def test_crds_check_command_fails_on_drift(tmp_path: Any, capsys: Any) -> None:
    assert main(["crds", "--dir", str(tmp_path)]) == 0
    assert main(["crds", "--dir", str(tmp_path), "--check"]) == 0
    path = tmp_path / INFERENCE_MODEL.filename
    path.write_text(path.read_text().replace("shortNames", "shortnames"))
    assert main(["crds", "--dir", str(tmp_path), "--check"]) == 1
    assert INFERENCE_MODEL.filename in capsys.readouterr().err


@pytest.mark.parametrize("crd", ALL_CRDS, ids=lambda c: c.kind)
def test_generated_schema_is_structural(crd: Any) -> None:
    schema = build_crd(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert check_structural(schema) == []


def test_schema_has_no_references_or_null_unions() -> None:
    text = (REPO / "crds" / INFERENCE_MODEL.filename).read_text()
    for forbidden in ("$ref", "$defs", "type: 'null'", "type: null", "const:", "title:"):
        assert forbidden not in text


def _schema(crd: Any) -> dict[str, Any]:
    return build_crd(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


_GOOD = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "a": {"type": "string"}}}}}  # fmt: skip


def _spec(schema: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = schema["properties"]["spec"]
    return node


def _add(**props: Any) -> Any:
    return lambda s: _spec(s)["properties"].update(props)


_MAP_LIST = {
    "type": "array",
    "items": {"type": "object", "properties": {"k": {"type": "string"}}},
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["k"],
}


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda s: _spec(s)["properties"]["a"].pop("type"), "every node needs a type"),
        (_add(b={"$ref": "#/x"}), "'$ref'"),
        (_add(b={"anyOf": [{"type": "string"}, {"type": "null"}]}), "anyOf must not set 'type'"),
        (_add(b={"type": "null"}), "use nullable"),
        (lambda s: _spec(s).update(additionalProperties=False), "additionalProperties"),
        (_add(b={"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
         "free-form maps"),
        (lambda s: s["properties"].update(
            metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
         "only name and generateName"),
        (_add(b={"type": "integer", "minimum": 0, "exclusiveMinimum": 0}), "must be a boolean"),
        (_add(b=_MAP_LIST), "must be required or defaulted"),
        (_add(b={"type": "string", "enum": [1]}), "does not match type"),
    ],
)  # fmt: skip
def test_structural_checker_catches_each_rule(mutate: Any, problem: str) -> None:
    schema = copy.deepcopy(_GOOD)
    assert check_structural(schema) == []
    mutate(schema)
    problems = check_structural(schema)
    assert any(problem in p for p in problems), problems


def test_preserve_unknown_fields_allowed_where_declared_free_form() -> None:
    schema = copy.deepcopy(_GOOD)
    schema["properties"]["spec"]["properties"]["extra"] = {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}  # fmt: skip
    assert check_structural(schema, preserve_unknown_at=frozenset({".spec.extra"})) == []


def test_quantities_are_int_or_string_and_enums_are_closed() -> None:
    spec = _schema(TIER_CLASS)["properties"]["spec"]["properties"]
    assert spec["memoryPerNode"]["x-kubernetes-int-or-string"] is True
    assert spec["kind"]["enum"] == ["gpu", "cpu", "offload"]
    im = _schema(INFERENCE_MODEL)["properties"]["spec"]["properties"]
    assert im["precisions"]["items"]["enum"] == ["fp32", "bf16", "fp16", "int8", "int4"]
    assert im["model"]["properties"]["task"]["enum"] == ["text-embedding", "text-generation"]


def test_inferencemodel_crd_shows_the_plan_in_kubectl_get() -> None:
    crd = yaml.safe_load((REPO / "crds" / INFERENCE_MODEL.filename).read_text())
    version = crd["spec"]["versions"][0]
    default_columns = [
        c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c
    ]
    assert default_columns == ["Precision", "Tier", "Replicas", "Ready", "Cost/1k", "Age"]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["im"]
    assert crd["spec"]["names"]["categories"] == ["tierwise"]
    assert crd["spec"]["scope"] == "Namespaced"


def test_tierclass_crd_is_cluster_scoped_with_its_columns() -> None:
    crd = yaml.safe_load((REPO / "crds" / TIER_CLASS.filename).read_text())
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
               if "priority" not in c]  # fmt: skip
    assert columns == ["Kind", "Memory", "Price", "Age"]
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["shortNames"] == ["tc"]


def test_cross_field_rules_are_cel_validations() -> None:
    im = _schema(INFERENCE_MODEL)["properties"]["spec"]["properties"]
    assert im["replicas"]["x-kubernetes-validations"][0]["rule"] == "self.min <= self.max"
    assert "maxDegradation" in im["accuracyBudget"]["x-kubernetes-validations"][0]["rule"]
