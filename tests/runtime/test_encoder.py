"""The BERT-style encoder reproduces sentence-transformers' all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from tierwise_operator.api import Architecture, Precision, Task, TierKind
from tierwise_runtime.engine import EmbeddingEngine, Engine, GenerationEngine
from tierwise_runtime.errors import InputError

from .conftest import embed_all


@pytest.fixture(scope="session")
def sentence_transformers_embeddings(sentences: list[str]) -> torch.Tensor:
    from sentence_transformers import SentenceTransformer

    from tierwise_runtime.sources import resolve_source

    model = SentenceTransformer(str(resolve_source("builtin://all-minilm-l6-v2")), device="cpu")
    return model.encode(sentences, batch_size=32, convert_to_tensor=True).float()


@pytest.mark.slow
def test_fp32_embeddings_match_sentence_transformers(
    sentences: list[str],
    minilm_fp32_embeddings: torch.Tensor,
    sentence_transformers_embeddings: torch.Tensor,
) -> None:
    assert len(sentences) >= 100
    cosine = (minilm_fp32_embeddings * sentence_transformers_embeddings).sum(dim=1)
    assert cosine.min() >= 0.9999, f"worst cosine {cosine.min():.6f}"


def test_embeddings_are_unit_vectors_one_per_text(minilm_fp32_embeddings: torch.Tensor) -> None:
    assert minilm_fp32_embeddings.dtype == torch.float32
    assert minilm_fp32_embeddings.shape[1] == 384
    torch.testing.assert_close(
        minilm_fp32_embeddings.norm(dim=1), torch.ones(len(minilm_fp32_embeddings))
    )


def test_an_embedding_does_not_depend_on_its_batch(
    minilm: Callable[..., Engine], sentences: list[str]
) -> None:
    engine = minilm("fp32")
    alone = torch.cat([engine.embed([s]) for s in sentences[:8]])  # type: ignore[union-attr]
    together = engine.embed(sentences[:8])  # type: ignore[union-attr]
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=0)


def test_info_describes_the_loaded_encoder(minilm: Callable[..., Engine]) -> None:
    engine = minilm("fp32")
    assert isinstance(engine, EmbeddingEngine) and not isinstance(engine, GenerationEngine)
    info = engine.info
    assert (info.task, info.architecture, info.precision) == (
        Task.TEXT_EMBEDDING,
        Architecture.BERT,
        Precision.FP32,
    )
    assert (info.tier, info.device, info.embedding_dim) == (TierKind.CPU, "cpu", 384)
    assert info.max_tokens == 256  # sentence-transformers' max_seq_length, not BERT's 512
    assert info.parameters == 22_565_376
    assert info.weight_bytes == 4 * info.parameters
    assert info.kv_cache_bytes_per_token is None


def test_tokenize_reports_length_before_truncation_and_embed_truncates(
    minilm: Callable[..., Engine],
) -> None:
    engine = minilm("fp32")
    long_text = "word " * 400
    assert len(engine.tokenize([long_text])[0]) == 402  # [CLS] + 400 + [SEP]
    truncated = " ".join(["word"] * 254)
    torch.testing.assert_close(
        engine.embed([long_text]),  # type: ignore[union-attr]
        engine.embed([truncated]),  # type: ignore[union-attr]
    )


def test_embedding_nothing_is_an_input_error(minilm: Callable[..., Engine]) -> None:
    with pytest.raises(InputError, match="no texts"):
        minilm("fp32").embed([])  # type: ignore[union-attr]


def test_embed_all_batches_cover_every_text(
    minilm: Callable[..., Engine], sentences: list[str]
) -> None:
    assert embed_all(minilm("fp32"), sentences[:40], batch=16).shape == (40, 384)
