"""Inputs the planner cannot use are said out loud: unknown TierClasses are problems,
everything it ignores is a warning that names what was ignored."""

from __future__ import annotations

from tierwise_operator.api import InferenceModel, Precision
from tierwise_operator.planner import decide
from tierwise_operator.planner.figures import FigureSource
from tierwise_operator.planner.input_checks import (
    condition,
    model_findings,
    snapshot_warnings,
)

from .conftest import NOW, entry, model, point, profile, snapshot, tier

TIERS = [tier("cpu-b"), tier("gpu-a", "gpu", memory="80Gi")]


def test_a_tier_class_that_does_not_exist_is_a_problem_naming_it() -> None:
    findings = model_findings(model(tiers=["cpu-b", "tpu-z", "gpu-y"]), TIERS)
    assert findings.problems == (
        'spec.tierClasses: no TierClass named "gpu-y"',
        'spec.tierClasses: no TierClass named "tpu-z"',
    )
    assert findings.warnings == ()


def test_the_model_still_plans_over_the_tier_classes_that_exist() -> None:
    plan = decide(model(slo="1s", tiers=["cpu-b", "tpu-z"]), TIERS, NOW)
    assert plan.feasible and plan.tier_class == "cpu-b"


def test_profile_entries_of_undeclared_variants_are_ignored_with_a_warning() -> None:
    prof = profile(
        entry("int8", "cpu", 0.1, 0.0, [point(1, 10, 100)]),
        entry("int8", "cpu", 0.1, 0.0, [point(1, 10, 100)], variant="old-student"),
        entry("fp16", "gpu", 0.1, 0.0, [point(1, 10, 100)], variant="old-student"),
    )
    findings = model_findings(model(prof=prof), TIERS)
    assert findings.problems == ()
    assert findings.warnings == (
        'spec.profile: 2 entries of variant "old-student" ignored: '
        "it is not in spec.model.variants",
    )


def embedder_with_decoder_fields() -> InferenceModel:
    prof = profile(entry("int8", "cpu", 0.1, 0.0, [point(1, 10, 100)], kv_per_token=65536))
    m = model(prof=prof)
    wire = m.to_wire()
    wire["spec"]["model"]["contextLength"] = 8192
    return InferenceModel.model_validate(wire)


def test_decoder_only_fields_on_an_embedding_model_are_ignored_with_a_warning() -> None:
    findings = model_findings(embedder_with_decoder_fields(), TIERS)
    assert findings.warnings == (
        "spec.model.contextLength ignored: a text-embedding model keeps no KV cache",
        "spec.profile: kvCacheBytesPerToken of 1 entry ignored: "
        "a text-embedding model keeps no KV cache",
    )


def test_an_embedding_model_reserves_no_kv_cache_whatever_its_profile_says() -> None:
    f = FigureSource(embedder_with_decoder_fields()).figures("primary", Precision.INT8, TIERS[0])
    assert f.kv_bytes_per_token == 0


def test_snapshot_nodes_of_unknown_tier_classes_are_ignored_with_a_warning() -> None:
    nodes = [
        {"name": n, "tierClass": t, "freeMemory": "8Gi"}
        for n, t in [("c1", "cpu-b"), ("x2", "tpu-z"), ("x1", "tpu-z"), ("g", "gpu-old")]
    ]
    assert snapshot_warnings(snapshot(nodes=nodes), TIERS) == [
        'metrics snapshot: 1 node of TierClass "gpu-old" ignored (g): no such TierClass',
        'metrics snapshot: 2 nodes of TierClass "tpu-z" ignored (x1, x2): no such TierClass',
    ]
    assert snapshot_warnings(snapshot(), TIERS) == []
    assert snapshot_warnings(None, TIERS) == []


def test_the_condition_names_the_problem_first_and_then_what_was_ignored() -> None:
    m = embedder_with_decoder_fields().model_copy(deep=True)
    m.spec.tier_classes = ["tpu-z"]
    status, reason, message = condition(model_findings(m, TIERS))
    assert (status, reason) == (False, "UnknownTierClass")
    assert message.startswith('spec.tierClasses: no TierClass named "tpu-z"; spec.model.')
    assert condition(model_findings(embedder_with_decoder_fields(), TIERS))[:2] == (
        False,
        "InputIgnored",
    )
    assert condition(model_findings(model(), TIERS)) == (True, "AsGiven", "every input is used")
