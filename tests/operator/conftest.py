"""Fixtures for operator tests: typed samples with the identity the API server would give them."""

from __future__ import annotations

import pytest

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.manifests import load_resources

from ..conftest import SAMPLES


@pytest.fixture(scope="session")
def sample_tiers() -> dict[str, TierClass]:
    _, tiers = load_resources([SAMPLES])
    return {t.name: t for t in tiers}


@pytest.fixture
def embedder() -> InferenceModel:
    models, _ = load_resources([SAMPLES / "ticket-embedder.yaml"])
    model = models[0]
    model.metadata.namespace = "support"
    model.metadata.uid = "0b9c7b0e-7d7e-4d55-9d57-1d4c0c0c0001"
    model.metadata.generation = 1
    return model


@pytest.fixture
def summarizer() -> InferenceModel:
    models, _ = load_resources([SAMPLES / "ticket-summarizer.yaml"])
    model = models[0]
    model.metadata.namespace = "support"
    model.metadata.uid = "0b9c7b0e-7d7e-4d55-9d57-1d4c0c0c0002"
    model.metadata.generation = 1
    return model
