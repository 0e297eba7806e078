"""Every sample passes its CRD schema and the models; every invalid one is refused by both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierwise_operator.api import InvalidSpec
from tierwise_operator.crd.validate import validate_object
from tierwise_operator.manifests import KINDS, parse_resource

from .conftest import INVALID_SAMPLES, SAMPLES


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") in KINDS]


VALID = [(p, i) for p in sorted(SAMPLES.glob("*.yaml")) for i, _ in enumerate(_docs(p))]
INVALID = sorted(INVALID_SAMPLES.glob("*.yaml"))


def _expected(path: Path) -> str:
    match = re.search(r"^# expect: (\S+)", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} must say which field it breaks (# expect: <path>)"
    return match[1]


@pytest.mark.parametrize(("path", "index"), VALID, ids=lambda v: getattr(v, "name", str(v)))
def test_sample_validates_against_its_crd_schema(
    path: Path, index: int, crd_schemas: dict[str, Any]
) -> None:
    doc = _docs(path)[index]
    assert validate_object(doc, crd_schemas[doc["kind"]]) == []
    parse_resource(doc)


def test_there_are_samples_of_every_kind() -> None:
    kinds = {d["kind"] for p in SAMPLES.glob("*.yaml") for d in _docs(p)}
    assert kinds == set(KINDS)
    assert len(INVALID) >= 8


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_sample_is_rejected_by_the_crd_schema(
    path: Path, crd_schemas: dict[str, Any]
) -> None:
    (doc,) = _docs(path)
    problems = validate_object(doc, crd_schemas[doc["kind"]])
    assert problems, f"{path.name} passed the CRD schema"
    assert any(p.startswith(_expected(path)) for p in problems), problems


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_sample_is_rejected_by_the_models(path: Path) -> None:
    (doc,) = _docs(path)
    with pytest.raises(InvalidSpec) as info:
        parse_resource(doc)
    expected = re.sub(r"\[\d+\]$", "", _expected(path))
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
    # Each message names the field and says what is wrong, on one line.
    assert all(": " in p and "\n" not in p for p in info.value.problems)
