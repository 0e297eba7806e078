"""Candidates are every allowed variant x precision x TierClass, named the way status names them."""

from __future__ import annotations

import pytest

from tierwise_operator.api import Precision
from tierwise_operator.planner.candidates import (
    CandidateKey,
    enumerate_candidates,
    missing_tiers,
)

from .conftest import model, tier

TIERS = [tier("gpu-a", "gpu"), tier("cpu-b"), tier("nvme-c", "offload")]


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (CandidateKey("primary", Precision.INT4, "cpu-large"), "int4/cpu-large"),
        (CandidateKey("student", Precision.FP16, "gpu-16g"), "student/fp16/gpu-16g"),
    ],
)
def test_candidate_names_leave_out_the_primary_variant_and_parse_back(
    key: CandidateKey, text: str
) -> None:
    assert str(key) == text
    assert CandidateKey.parse(text) == key


@pytest.mark.parametrize("text", ["int3/cpu", "cpu", "a/b/c/d", "/int8/cpu", "int8/"])
def test_malformed_candidate_names_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=text.split("/", maxsplit=1)[0] or "candidate"):
        CandidateKey.parse(text)


def test_every_allowed_variant_precision_and_tier_is_a_candidate() -> None:
    m = model(
        precisions=["fp16", "int8"],
        tiers=["cpu-b", "gpu-a"],
        variants=[{"name": "student", "source": {"uri": "builtin://s"}, "parameters": 10}],
    )
    names = [str(c.key) for c in enumerate_candidates(m, TIERS)]
    assert names == [
        "fp16/cpu-b", "fp16/gpu-a", "int8/cpu-b", "int8/gpu-a",
        "student/fp16/cpu-b", "student/fp16/gpu-a", "student/int8/cpu-b", "student/int8/gpu-a",
    ]  # fmt: skip


def test_an_empty_tier_list_allows_every_tier_and_unknown_names_are_reported() -> None:
    assert len(enumerate_candidates(model(precisions=["int8"]), TIERS)) == 3
    m = model(tiers=["cpu-b", "tpu-z"])
    assert missing_tiers(m, TIERS) == ["tpu-z"]
