"""Streamed text costs time linear in its length and equals the whole sequence decoded at once."""

from __future__ import annotations

import time
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise_runtime.checkpoint import read_checkpoint
from tierwise_runtime.checkpoint.tokenizer import TextTokenizer
from tierwise_runtime.sources import resolve_source
from tierwise_runtime.textstream import TextStream


@cache
def smollm_tokenizer() -> TextTokenizer:
    """SmolLM2's byte-level BPE (from its GGUF): tokens that split characters and spaces."""
    return read_checkpoint(resolve_source("builtin://smollm2-135m")).tokenizer


def _streamed(ids: list[int], stop: tuple[str, ...] = ()) -> str:
    stream = TextStream(smollm_tokenizer().decode, stop)
    return "".join(stream.push(i) for i in ids) + stream.flush()


@settings(max_examples=60, deadline=None, database=None)
@given(ids=st.lists(st.integers(min_value=0, max_value=49151), min_size=1, max_size=80))
def test_streamed_text_equals_the_whole_decode(ids: list[int]) -> None:
    assert _streamed(ids) == smollm_tokenizer().decode(ids)


@settings(max_examples=30, deadline=None, database=None)
@given(text=st.text(min_size=1, max_size=60))
def test_streamed_text_of_encoded_text_is_that_text(text: str) -> None:
    tok = smollm_tokenizer()
    ids = tok.encode([text])[0]
    assert _streamed(ids) == tok.decode(ids)


def test_each_token_costs_the_same_late_in_a_long_text_as_early() -> None:
    ids = [(i * 7919) % 49152 for i in range(8000)]
    stop = ("a" * 255 + "b", "z" * 256, "\n\n\n\n", "<|im_end|>")

    def cost(count: int) -> float:
        stream = TextStream(smollm_tokenizer().decode, stop)
        started = time.perf_counter()
        for token in ids[:count]:
            stream.push(token)
        return time.perf_counter() - started

    short, long = min(cost(2000) for _ in range(3)), min(cost(8000) for _ in range(3))
    assert long < 8 * short  # quadratic would be 16x; linear is 4x
