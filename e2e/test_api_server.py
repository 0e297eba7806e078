"""What only a real API server checks: it accepts the CRDs, their schemas and CEL rules,
serves every valid sample and refuses every invalid one, naming the field."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from .install import CRD_NAMES
from .kubectl import Kubectl, condition, dump
from .manifests import CRDS, INVALID_SAMPLES, SAMPLES, yaml_documents

pytestmark = pytest.mark.usefixtures("crds")

KINDS = ("InferenceModel", "TierClass")
VALID = [
    pytest.param(path, index, id=f"{path.stem}/{doc['metadata']['name']}")
    for path in sorted(SAMPLES.glob("*.yaml"))
    for index, doc in enumerate(yaml_documents(path))
    if doc.get("kind") in KINDS
]
INVALID = sorted(INVALID_SAMPLES.glob("*.yaml"))


def _expected_field(path: Path) -> str:
    match = re.search(r"^# expect: (\S+)", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} must say which field it breaks (# expect: <path>)"
    return match[1]


def _renamed(doc: dict[str, Any], run_id: str) -> dict[str, Any]:
    """A copy under this run's name, so a TierClass that slipped through clobbers nothing."""
    out = copy.deepcopy(doc)
    out["metadata"]["name"] = f"e2e-{run_id}-{doc['metadata']['name']}"[:63]
    return out


@pytest.mark.parametrize("name", CRD_NAMES)
def test_crd_is_established_with_its_cel_rules_kept(cluster: Kubectl, name: str) -> None:
    crd = cluster.get("customresourcedefinition", name)
    assert crd is not None
    assert condition(crd, "Established").get("status") == "True"
    assert condition(crd, "NamesAccepted").get("status") == "True"
    served = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    plural = name.split(".", maxsplit=1)[0]
    (committed,) = yaml_documents(CRDS / f"tierwise.dev_{plural}.yaml")
    # The server stored the schema as written: no rule was dropped or rewritten.
    assert served == committed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert "x-kubernetes-validations" in repr(served)


@pytest.mark.parametrize(("path", "index"), VALID)
def test_valid_sample_is_accepted_by_the_api_server(
    k: Kubectl, run_id: str, path: Path, index: int
) -> None:
    doc = _renamed(yaml_documents(path)[index], run_id)
    doc["metadata"].pop("namespace", None)
    # A server-side dry run validates the object fully and stores nothing.
    result = k.run("apply", "--dry-run=server", "--filename", "-", stdin=_yaml(doc), check=False)
    assert result.code == 0, result.err
    assert "(server dry run)" in result.out


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_sample_is_refused_naming_its_field(k: Kubectl, run_id: str, path: Path) -> None:
    (doc,) = yaml_documents(path)
    doc = _renamed(doc, run_id)
    try:
        result = k.run("apply", "--filename", "-", stdin=_yaml(doc), check=False)
    finally:
        k.delete(doc["kind"].lower(), doc["metadata"]["name"])
    assert result.code != 0, f"{path.name} was accepted: {result.out}"
    field = _expected_field(path)
    assert f"{field}: " in result.err, result.err
    assert f'The {doc["kind"]} "{doc["metadata"]["name"]}" is invalid' in result.err


def _yaml(doc: dict[str, Any]) -> str:
    return dump([doc])
