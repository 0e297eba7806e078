"""Profile progress: a live line per candidate with an ETA on a terminal, plain logs otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """`start(label)` / `step(detail)` / `done(summary)` for each of `total` candidates."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.index = 0
        self.started = time.monotonic()
        self.label = ""

    def _eta(self) -> str:
        if self.index == 0:
            return "ETA --:--"
        per = (time.monotonic() - self.started) / self.index
        return f"ETA {_clock(per * (self.total - self.index))}"

    def start(self, label: str) -> None:
        self.label = label
        self.step("loading")

    def step(self, detail: str) -> None:
        line = f"[{self.index + 1}/{self.total}] {self.label:<28} {detail:<40} {self._eta()}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            self.stream.flush()

    def done(self, summary: str) -> None:
        self.index += 1
        elapsed = _clock(time.monotonic() - self.started)
        line = f"[{self.index}/{self.total}] {self.label:<28} {summary}  (elapsed {elapsed})"
        self.stream.write(("\r" + line.ljust(120) + "\n") if self.tty else line + "\n")
        self.stream.flush()
