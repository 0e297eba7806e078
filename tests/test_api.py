"""The API accepts the design's examples, applies documented defaults, rejects bad specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tierwise_operator.api import (
    InferenceModel,
    InferenceModelSpec,
    InvalidSpec,
    Precision,
    TierClass,
    TierKind,
    defaults,
)
from tierwise_operator.manifests import load_resources, parse_resource

from .conftest import REPO

MINIMAL_SPEC = {
    "model": {"task": "text-embedding", "architecture": "bert",
              "source": {"uri": "builtin://all-minilm-l6-v2"}},
    "accuracyBudget": {"maxDegradation": "2%"},
}  # fmt: skip


def test_design_examples_parse_and_write_back_unchanged_in_meaning() -> None:
    path = REPO.parent / "shared" / "design" / "api-examples.yaml"
    if not path.exists():
        path = REPO / "deploy" / "samples" / "tierclasses.yaml"
    for doc in yaml.safe_load_all(path.read_text()):
        resource = parse_resource(doc)
        again = parse_resource(resource.to_wire())
        assert again == resource


def test_unset_fields_take_the_documented_defaults() -> None:
    spec = InferenceModelSpec.model_validate(MINIMAL_SPEC)
    assert spec.precisions == list(Precision)
    assert spec.tier_classes == []
    assert (spec.replicas.min, spec.replicas.max) == (defaults.REPLICAS_MIN, defaults.REPLICAS_MAX)
    assert spec.accuracy_budget.eval_set is None  # the bundled set
    assert spec.traffic.headroom == defaults.HEADROOM
    assert spec.priority == defaults.PRIORITY
    assert spec.context_length == defaults.CONTEXT_LENGTH


def test_repeated_precisions_collapse_in_order() -> None:
    spec = InferenceModelSpec.model_validate(
        {**MINIMAL_SPEC, "precisions": ["int8", "fp32", "int8"]}
    )
    assert spec.precisions == [Precision.INT8, Precision.FP32]


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ({"slo": {"latencyP99": "fast"}},
         'spec.slo.latencyP99: "fast" is not a duration (examples: 50ms, 2s, 15m)'),
        ({"accuracyBudget": {"maxDegradation": "150%"}},
         "spec.accuracyBudget.maxDegradation: 150% is outside 0..100%"),
        ({"replicas": {"min": 3, "max": 2}}, "spec.replicas: min (3) must not exceed max (2)"),
        ({"precisions": []}, "spec.precisions: list at least one precision"),
        ({"precisions": ["int3"]}, "spec.precisions[0]: Input should be"),
        ({"replica": {"min": 1}}, "spec.replica: unknown field"),
        ({"model": {**MINIMAL_SPEC["model"], "variants": [  # type: ignore[dict-item]
            {"name": "primary", "source": {"uri": "builtin://x"}}]}},
         'spec.model.variants[0].name: "primary" names spec.model.source'),
        ({"traffic": {"targetRPS": -1}}, "spec.traffic.targetRPS: Input should be greater"),
    ],
)  # fmt: skip
def test_invalid_specs_report_field_and_problem(patch: dict[str, object], problem: str) -> None:
    doc = {
        "apiVersion": defaults.API_VERSION, "kind": "InferenceModel",
        "metadata": {"name": "m"}, "spec": {**MINIMAL_SPEC, **patch},
    }  # fmt: skip
    with pytest.raises(InvalidSpec) as info:
        parse_resource(doc)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_wrong_api_version_is_named() -> None:
    with pytest.raises(InvalidSpec, match=r"expected tierwise\.dev/v1alpha1"):
        parse_resource({"apiVersion": "tierwise.dev/v1", "kind": "TierClass", "metadata": {}})


def test_offload_tier_requires_a_path() -> None:
    doc = {
        "apiVersion": defaults.API_VERSION, "kind": "TierClass", "metadata": {"name": "t"},
        "spec": {"kind": "offload", "memoryPerNode": "32Gi", "pricing": {"perNodeHour": "1"}},
    }  # fmt: skip
    with pytest.raises(InvalidSpec, match=r"offload tiers need spec\.offload\.path"):
        parse_resource(doc)


def test_samples_load_as_typed_resources() -> None:
    models, tiers = load_resources([REPO / "deploy" / "samples"])
    assert {m.name for m in models} >= {"ticket-embedder", "ticket-summarizer"}
    assert {t.spec.kind for t in tiers} == set(TierKind)
    assert all(isinstance(m, InferenceModel) for m in models)
    assert all(isinstance(t, TierClass) for t in tiers)


def test_invalid_samples_fail_together_with_every_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as info:
        load_resources([REPO / "deploy" / "samples" / "invalid"])
    assert len(info.value.problems) >= len(list((REPO / "deploy/samples/invalid").glob("*.yaml")))
