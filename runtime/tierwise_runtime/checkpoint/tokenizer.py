"""Text <-> token ids with the `tokenizers` library, from tokenizer.json or GGUF metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from ..errors import CheckpointError

# Pre-tokenizer regexes of the GGUF `tokenizer.ggml.pre` types we build, as llama.cpp has them.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_CONTROL, _USER_DEFINED = 3, 4


class TextTokenizer:
    """Encodes batches of texts (special tokens added) and decodes ids back to text."""

    def __init__(self, tokenizer: Tokenizer, bos_id: int | None = None) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tok = tokenizer
        self.bos_id = bos_id
        """Prepended by us when set (GGUF); tokenizer.json adds its own in post-processing."""

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

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=True))

    def token_id(self, text: str) -> int | None:
        found = self._tok.token_to_id(text)
        return None if found is None else int(found)


def tokenizer_from_gguf(meta: dict[str, Any]) -> TextTokenizer:
    """Byte-level BPE tokenizer from GGUF metadata (vocab, merges, special tokens)."""
    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise CheckpointError(
            f"GGUF tokenizer model {kind!r} is not supported (only byte-level BPE, 'gpt2'); "
            "put a tokenizer.json beside the .gguf file"
        )
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
    bos = meta.get("tokenizer.ggml.bos_token_id")
    return TextTokenizer(tok, int(bos) if add_bos and bos is not None else None)


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
