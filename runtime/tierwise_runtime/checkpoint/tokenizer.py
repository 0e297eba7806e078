"""Text <-> token ids with the `tokenizers` library, from tokenizer.json or GGUF metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from ..chat import NO_TEMPLATE, ChatMessage, ChatTemplate
from ..errors import CheckpointError, InputError

# Pre-tokenizer regexes of the GGUF `tokenizer.ggml.pre` types we build, as llama.cpp has them.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# GGUF token types (llama.cpp's, the same numbers as SentencePiece's piece types).
_NORMAL, _CONTROL, _USER_DEFINED = 1, 3, 4
_SPACE = "\u2581"  # SentencePiece's visible space, "▁"


class TextTokenizer:
    """Encodes batches of texts (special tokens added) and decodes ids back to text."""

    def __init__(self, tokenizer: Tokenizer, bos_id: int | None = None) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tok = tokenizer
        self.bos_id = bos_id
        """Prepended by us when set (GGUF); tokenizer.json adds its own in post-processing."""
        self.chat_template: ChatTemplate | None = None
        """How the model's chat turns are written, when it is a chat model."""

    @classmethod
    def from_file(cls, path: Path) -> TextTokenizer:
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:
            raise CheckpointError(f"cannot read tokenizer {path}: {exc}") from None

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=True)
        ids = [list(e.ids) for e in encodings]
        if self.bos_id is not None:
            ids = [s if s[:1] == [self.bos_id] else [self.bos_id, *s] for s in ids]
        return ids

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt for the assistant's next turn. The template writes the special tokens
        itself, so none are added (as transformers' apply_chat_template does), except a BOS
        the tokenizer always starts with."""
        if self.chat_template is None:
            raise InputError(NO_TEMPLATE)
        text = self.chat_template.render(messages)
        ids = list(self._tok.encode(text, add_special_tokens=False).ids)
        if self.bos_id is not None and ids[:1] != [self.bos_id]:
            ids.insert(0, self.bos_id)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=True))

    def token_id(self, text: str) -> int | None:
        found = self._tok.token_to_id(text)
        return None if found is None else int(found)


def tokenizer_from_gguf(meta: dict[str, Any]) -> TextTokenizer:
    """The tokenizer a GGUF file describes: byte-level BPE (`gpt2`: SmolLM, Llama 3) or
    SentencePiece BPE (`llama`: Llama 1/2, Mistral, TinyLlama)."""
    kind = meta.get("tokenizer.ggml.model")
    if kind == "gpt2":
        return _byte_level_bpe(meta)
    if kind == "llama":
        return _sentencepiece_bpe(meta)
    raise CheckpointError(
        f"GGUF tokenizer model {kind!r} is not supported ('gpt2': byte-level BPE, 'llama': "
        "SentencePiece BPE); put a tokenizer.json beside the .gguf file"
    )


def _byte_level_bpe(meta: dict[str, Any]) -> TextTokenizer:
    """Byte-level BPE from the vocabulary, merges and special tokens in the metadata."""
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    pre = str(meta.get("tokenizer.ggml.pre", "default"))
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    bpe = models.BPE(
        vocab={t: i for i, t in enumerate(tokens)},
        merges=merges,
        ignore_merges=pre == "llama-bpe",
    )
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = _pre_tokenizer(pre)
    tok.decoder = decoders.ByteLevel()
    _add_special_tokens(tok, tokens, meta.get("tokenizer.ggml.token_type", []))
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False))
    return TextTokenizer(tok, _bos(meta) if add_bos else None)


def _sentencepiece_bpe(meta: dict[str, Any]) -> TextTokenizer:
    """SentencePiece BPE as llama.cpp runs it: a "▁" before the text and for every space,
    pieces merged best score first, unknown characters spelled as byte tokens."""
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    scores: list[float] | None = meta.get("tokenizer.ggml.scores")
    types: list[int] = list(meta.get("tokenizer.ggml.token_type") or [_NORMAL] * len(tokens))
    if scores is None or len(scores) != len(tokens) or len(types) != len(tokens):
        raise CheckpointError("GGUF SentencePiece tokenizer needs a score and a type per token")
    unk = meta.get("tokenizer.ggml.unknown_token_id")
    bpe = models.BPE(
        vocab={t: i for i, t in enumerate(tokens)},
        merges=sentencepiece_merges(tokens, scores, types),
        unk_token=tokens[int(unk)] if unk is not None else None,
        fuse_unk=True,
        byte_fallback=True,
    )
    tok = Tokenizer(bpe)
    prefix = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
    spaces = [normalizers.Replace(" ", _SPACE)]
    tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend(_SPACE), *spaces] if prefix else spaces
    )
    steps = [decoders.ByteFallback(), decoders.Fuse(), decoders.Replace(_SPACE, " ")]
    tok.decoder = decoders.Sequence([*steps, decoders.Strip(" ", 1, 0)] if prefix else steps)
    _add_special_tokens(tok, tokens, types)
    # llama.cpp adds BOS for SentencePiece vocabularies unless the file says otherwise.
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", True))
    return TextTokenizer(tok, _bos(meta) if add_bos else None)


def sentencepiece_merges(
    tokens: Sequence[str], scores: Sequence[float], types: Sequence[int]
) -> list[tuple[str, str]]:
    """BPE merge rules equivalent to SentencePiece's scores, best first.

    SentencePiece BPE keeps no merge list: it joins the adjacent pair whose union is
    the best-scoring normal piece. Every split of a normal piece into two known
    pieces is such a join, ranked by the piece's score (ties by the parts' ids, as
    the file orders them).
    """
    ids = {t: i for i, t in enumerate(tokens)}
    ranked: list[tuple[float, int, int, str, str]] = []
    for piece, score, kind in zip(tokens, scores, types, strict=True):
        if kind != _NORMAL:
            continue  # control, unknown, user-defined, unused and byte pieces are never joined
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in ids and right in ids:
                ranked.append((-float(score), ids[left], ids[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def _bos(meta: dict[str, Any]) -> int | None:
    bos = meta.get("tokenizer.ggml.bos_token_id")
    return None if bos is None else int(bos)


def _pre_tokenizer(pre: str) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("default", "gpt2", "gpt-2"):
        return byte_level
    if pre == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre == "llama-bpe":
        split = pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), behavior="isolated")
        no_regex = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        return pre_tokenizers.Sequence([split, no_regex])
    raise CheckpointError(
        f"GGUF pre-tokenizer {pre!r} is not supported (gpt2, smollm, llama-bpe); "
        "put a tokenizer.json beside the .gguf file"
    )


def _add_special_tokens(tok: Tokenizer, tokens: list[str], types: list[int]) -> None:
    control = [t for t, kind in zip(tokens, types, strict=False) if kind == _CONTROL]
    user = [t for t, kind in zip(tokens, types, strict=False) if kind == _USER_DEFINED]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in user])
