"""SentencePiece BPE from GGUF metadata (Llama 1/2, Mistral, TinyLlama files) tokenizes as
the `sentencepiece` library does.

The reference model is trained here with Llama's trainer settings on the bundled eval
set, written into a real GGUF file's metadata, and read back the way checkpoints are.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import gguf
import pytest
import sentencepiece as spm  # the reference (a dev dependency)

from tierwise_runtime.checkpoint.gguf_reader import metadata_of
from tierwise_runtime.checkpoint.tokenizer import tokenizer_from_gguf
from tierwise_runtime.errors import CheckpointError

EVAL_SET = Path(__file__).parents[2] / "runtime/tierwise_runtime/data/eval_default.jsonl"
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


def train(add_dummy_prefix: bool) -> Any:
    """A 1,200-piece BPE model with the trainer settings of Llama's tokenizer.model."""
    texts = [json.loads(line)["text"] for line in EVAL_SET.read_text().splitlines()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=1200, model_type="bpe",
        byte_fallback=True, split_digits=True, add_dummy_prefix=add_dummy_prefix,
        remove_extra_whitespaces=False, normalization_rule_name="identity",
        allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, minloglevel=2,
    )  # fmt: skip
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def piece_type(sp: Any, i: int) -> int:
    """The GGUF token type (llama.cpp numbers them as SentencePiece does)."""
    kinds = [(sp.is_unknown, 2), (sp.is_control, 3), (sp.is_unused, 5), (sp.is_byte, 6)]
    return next((kind for test, kind in kinds if test(i)), 1)


def gguf_metadata(sp: Any, path: Path, *, prefix: bool, add_bos: bool | None) -> dict[str, Any]:
    """Write the model into a GGUF file's metadata, then read it back as checkpoints are."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("llama")
    size = sp.get_piece_size()
    writer.add_token_list([sp.id_to_piece(i) for i in range(size)])
    writer.add_token_scores([sp.get_score(i) for i in range(size)])
    writer.add_token_types([piece_type(sp, i) for i in range(size)])
    writer.add_unk_token_id(sp.unk_id())
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_add_space_prefix(prefix)
    if add_bos is not None:
        writer.add_add_bos_token(add_bos)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return metadata_of(gguf.GGUFReader(str(path)))


@pytest.fixture(scope="module", params=[True, False], ids=["space-prefix", "no-prefix"])
def trained(request: pytest.FixtureRequest) -> tuple[Any, bool]:
    return train(request.param), request.param


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
    sp = train(add_dummy_prefix=True)
    tok = tokenizer_from_gguf(gguf_metadata(sp, tmp_path / "t.gguf", prefix=True, add_bos=False))
    assert tok.encode(["hello"]) == [sp.encode("hello")]


def test_metadata_without_scores_is_refused_with_the_reason() -> None:
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["<unk>", "a"]}
    with pytest.raises(CheckpointError, match="score and a type per token"):
        tokenizer_from_gguf(meta)


def test_other_tokenizer_models_are_refused_with_the_alternative() -> None:
    with pytest.raises(CheckpointError, match=r"put a tokenizer\.json beside the \.gguf file"):
        tokenizer_from_gguf({"tokenizer.ggml.model": "t5"})
