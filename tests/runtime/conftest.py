"""Shared runtime fixtures: reference models loaded once per session, synthetic checkpoints,
and the CUDA skip (CUDA tests run only where torch sees a GPU)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
import torch

from tierwise_runtime.engine import Engine
from tierwise_runtime.loader import load_engine
from tierwise_runtime.synthetic import write_llama

DATA = Path(__file__).resolve().parent / "data"
MINILM = "builtin://all-minilm-l6-v2"
SMOLLM = "builtin://smollm2-135m"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False here")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sentences() -> list[str]:
    """Varied texts: topics, lengths, languages, code, URLs, emoji, near-empty ones."""
    return [line for line in (DATA / "sentences.txt").read_text().splitlines() if line.strip()]


@cache
def _engine(
    uri: str, precision: str, group_size: int | None = None, calibration: str | None = None
) -> Engine:
    return load_engine(uri, precision, group_size=group_size, calibration=calibration)


@pytest.fixture(scope="session")
def minilm() -> Callable[..., Engine]:
    """all-MiniLM-L6-v2 at a precision (and int4 group size and calibration), loaded once per
    session."""
    return lambda precision, group_size=None, calibration=None: _engine(
        MINILM, precision, group_size, calibration
    )


@pytest.fixture(scope="session")
def smollm() -> Callable[..., Engine]:
    """SmolLM2-135M-Instruct from its GGUF at a precision (and int4 calibration), loaded once
    per session."""
    return lambda precision, calibration=None: _engine(SMOLLM, precision, None, calibration)


def embed_all(engine: Engine, texts: list[str], batch: int = 32) -> torch.Tensor:
    return torch.cat([engine.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)])  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def minilm_fp32_embeddings(minilm: Callable[..., Engine], sentences: list[str]) -> torch.Tensor:
    return embed_all(minilm("fp32"), sentences)


@pytest.fixture(scope="session")
def small_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random Llama (GQA, untied) in Hugging Face layout."""
    return write_llama(tmp_path_factory.mktemp("small-llama"), vocab=512, dim=128, layers=2)


@pytest.fixture(scope="session")
def big_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llama of ~250 MB at fp32: big enough for resident-memory checks to mean
    something next to the ~150 MB a torch process starts with."""
    folder = tmp_path_factory.mktemp("big-llama")
    return write_llama(
        folder, vocab=8000, dim=768, layers=8, heads=12, kv_heads=4, intermediate=2048
    )
