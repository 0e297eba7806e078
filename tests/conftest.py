"""Fixtures shared by the whole suite: repository paths and the generated CRD schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "deploy" / "samples"
INVALID_SAMPLES = SAMPLES / "invalid"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def crd_schemas() -> dict[str, dict[str, Any]]:
    """openAPIV3Schema of each committed CRD, by kind."""
    schemas = {}
    for path in (REPO / "crds").glob("tierwise.dev_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        schemas[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
    return schemas
