"""Generated token ids to text deltas that never split a character or show part of a stop string."""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: What byte-level decoders print for the bytes of a character still incomplete.
_PARTIAL = "\ufffd"
#: Tokens a character may take before its bytes are released as they decode.
_MAX_UNSETTLED_TOKENS = 16


class TextStream:
    """The text of one generated sequence, released piece by piece.

    Each token re-decodes the whole sequence (decoders that drop a leading
    space or merge bytes only get it right with context) and releases what
    can no longer change: a trailing partial character, and a trailing piece
    that may be the start of a stop string, are held back until the next
    token settles them. A stop string ends the text just before it.
    """

    def __init__(
        self, detokenize: Callable[[Sequence[int]], str], stop: Sequence[str] = ()
    ) -> None:
        self._detokenize = detokenize
        self._stop = tuple(s for s in stop if s)
        self._ids: list[int] = []
        self._text = ""
        self._settled = ""
        """The text of the ids before `_read`: it no longer changes."""
        self._prefix = 0
        self._read = 0
        """ids[_prefix:_read] is the context the window after it is decoded with."""
        self._context = ""
        self._sent = 0
        self.stopped = False
        """True once a stop string appeared; the text ends before it."""

    @property
    def text(self) -> str:
        """Everything released so far."""
        return self._text[: self._sent]

    def push(self, token: int) -> str:
        """Add one generated token; returns the text it releases (often empty)."""
        if self.stopped:
            return ""
        self._ids.append(token)
        self._decode()
        cut = self._first_stop()
        if cut is not None:
            self.stopped = True
            return self._release(cut)
        return self._release(len(self._text) - self._unsettled())

    def _decode(self) -> None:
        full = self._detokenize(self._ids[self._prefix :])
        new = full[len(self._context) :]
        self._text = self._settled + new
        window = len(self._ids) - self._read
        if new and (not new.endswith(_PARTIAL) or window >= _MAX_UNSETTLED_TOKENS):
            self._settled = self._text
            self._prefix, self._read = self._read, len(self._ids)
            self._context = self._detokenize(self._ids[self._prefix : self._read])

    def flush(self) -> str:
        """The held-back rest, once the sequence has ended."""
        return "" if self.stopped else self._release(len(self._text))

    def _release(self, end: int) -> str:
        if end <= self._sent:
            return ""
        delta = self._text[self._sent : end]
        self._sent = end
        return delta

    def _first_stop(self) -> int | None:
        # Released text holds no stop string nor the start of one (that tail is held
        # back), so a stop can only begin in the unreleased tail.
        start = self._sent
        found = [i for stop in self._stop if (i := self._text.find(stop, start)) >= 0]
        return min(found) if found else None

    def _unsettled(self) -> int:
        """Length of the tail that the next tokens may still change or cut."""
        text = self._text
        partial = len(text) - len(text.rstrip(_PARTIAL))
        stop_prefix = max((_held_for(text, stop) for stop in self._stop), default=0)
        return max(partial, stop_prefix)


def _held_for(text: str, stop: str) -> int:
    """The longest k < len(stop) with text ending in stop[:k]: candidates are only where
    stop's first character sits in the last len(stop) - 1 characters."""
    start = max(0, len(text) - len(stop) + 1)
    i = text.find(stop[0], start)
    while i >= 0:
        if stop.startswith(text[i:]):
            return len(text) - i
        i = text.find(stop[0], i + 1)
    return 0
