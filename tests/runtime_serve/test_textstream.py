"""Streamed text never splits a character, never shows part of a stop string, ends before a stop."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tierwise_runtime.textstream import TextStream


def utf8(ids: Sequence[int]) -> str:
    """A byte-level decoder: token i is byte i."""
    return bytes(ids).decode("utf-8", errors="replace")


def run(text: str, stop: Sequence[str] = ()) -> tuple[list[str], TextStream]:
    stream = TextStream(utf8, stop)
    deltas = [stream.push(byte) for byte in text.encode()]
    if not stream.stopped:
        deltas.append(stream.flush())
    return [d for d in deltas if d], stream


def test_plain_text_is_released_token_by_token() -> None:
    deltas, stream = run("hello")
    assert deltas == list("hello")
    assert stream.text == "hello"


def test_a_multibyte_character_is_held_until_complete() -> None:
    deltas, _ = run("né€")
    assert deltas == ["n", "é", "€"]
    assert all("\ufffd" not in d for d in deltas)


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("hello world", ["o w"], "hell"),
        ("hello world", ["xyz", "lo"], "hel"),
        ("hello world", ["world", "ello"], "h"),
        ("hello world", ["d"], "hello worl"),
        ("abcabd", ["abd"], "abc"),
    ],
)
def test_text_ends_just_before_the_first_stop_string(
    text: str, stop: list[str], expected: str
) -> None:
    deltas, stream = run(text, stop)
    assert "".join(deltas) == expected
    assert stream.stopped


def test_a_possible_stop_string_prefix_is_held_back_then_released() -> None:
    stream = TextStream(utf8, ["abd"])
    released = [stream.push(b) for b in b"xab"]
    assert "".join(released) == "x"  # "ab" may still become "abd"
    assert stream.push(ord("c")) == "abc"
    assert not stream.stopped


def test_the_held_back_rest_comes_out_when_the_sequence_ends() -> None:
    stream = TextStream(utf8, ["!!"])
    assert "".join(stream.push(b) for b in b"hi!") == "hi"
    assert stream.flush() == "!"
    assert stream.text == "hi!"


def test_nothing_more_comes_after_a_stop() -> None:
    stream = TextStream(utf8, ["."])
    assert "".join(stream.push(b) for b in b"ok.") == "ok"
    assert stream.push(ord("x")) == ""
    assert stream.flush() == ""
