"""SentencePiece BPE from GGUF metadata (Llama 1/2, Mistral, TinyLlama files) tokenizes as
the `sentencepiece` library does.

The reference model is trained here with Llama's trainer settings on the bundled eval
set, written into a real GGUF file's metadata, and read back the way checkpoints are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import pytest

from tierwise_runtime.checkpoint.gguf_reader import metadata_of
from tierwise_runtime.checkpoint.tokenizer import tokenizer_from_gguf
from tierwise_runtime.errors import CheckpointError

from .gguf_writing import add_sentencepiece, finish, train_sentencepiece

EDGE_CASES = [
    "",
    " ",
    "a",
    "  two leading spaces",
    "trailing spaces   ",
    "tabs\tand\nnewlines\r\n",
    "digits 3.14159 and 2026-11-26",
    "rare: Ǆ ǅ ǆ, Ꙭ, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 😀🚀 (byte fallback)",
    "unknown words: xyzzyplugh qwfpgj",
]


def gguf_metadata(sp: Any, path: Path, *, prefix: bool, add_bos: bool | None) -> dict[str, Any]:
    """Write the model into a GGUF file's metadata, then read it back as checkpoints are."""
    writer = gguf.GGUFWriter(str(path), "llama")
    add_sentencepiece(writer, sp, prefix=prefix, add_bos=add_bos)
    finish(writer)
    return metadata_of(gguf.GGUFReader(str(path)))


@pytest.fixture(scope="module", params=[True, False], ids=["space-prefix", "no-prefix"])
def trained(request: pytest.FixtureRequest) -> tuple[Any, bool]:
    return train_sentencepiece(add_dummy_prefix=request.param), request.param


def test_ids_match_sentencepiece(
    trained: tuple[Any, bool], sentences: list[str], tmp_path: Path
) -> None:
    sp, prefix = trained
    tok = tokenizer_from_gguf(gguf_metadata(sp, tmp_path / "t.gguf", prefix=prefix, add_bos=None))
    texts = [*sentences, *EDGE_CASES]
    want = [[sp.bos_id(), *sp.encode(t)] for t in texts]  # BOS: llama.cpp's default for SPM
    got = tok.encode(texts)
    mismatched = [t for t, w, g in zip(texts, want, got, strict=True) if w != g]
    assert not mismatched, f"{len(mismatched)} of {len(texts)} differ, first: {mismatched[0]!r}"


def test_decoding_gives_back_what_sentencepiece_decodes(
    trained: tuple[Any, bool], sentences: list[str], tmp_path: Path
) -> None:
    sp, prefix = trained
    tok = tokenizer_from_gguf(gguf_metadata(sp, tmp_path / "t.gguf", prefix=prefix, add_bos=None))
    for text in [*sentences, *EDGE_CASES]:
        ids = tok.encode([text])[0]
        assert tok.decode(ids) == sp.decode(sp.encode(text)), text


def test_a_file_that_says_no_bos_gets_none(tmp_path: Path) -> None:
    sp = train_sentencepiece()
    tok = tokenizer_from_gguf(gguf_metadata(sp, tmp_path / "t.gguf", prefix=True, add_bos=False))
    assert tok.encode(["hello"]) == [sp.encode("hello")]


def test_metadata_without_scores_is_refused_with_the_reason() -> None:
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["<unk>", "a"]}
    with pytest.raises(CheckpointError, match="score and a type per token"):
        tokenizer_from_gguf(meta)


def test_other_tokenizer_models_are_refused_with_the_alternative() -> None:
    with pytest.raises(CheckpointError, match=r"put a tokenizer\.json beside the \.gguf file"):
        tokenizer_from_gguf({"tokenizer.ggml.model": "t5"})
