"""Checks of tokenized inputs against what the model accepts."""

from __future__ import annotations

from collections.abc import Sequence


class InputTooLong(ValueError):
    """An input (with the tokens asked to be generated after it) exceeds the model's maximum."""

    def __init__(self, index: int, tokens: int, limit: int, completion: int = 0) -> None:
        self.index = index
        self.tokens = tokens
        self.limit = limit
        self.completion = completion
        super().__init__(self.describe(f"input {index}"))

    def describe(self, name: str) -> str:
        """The problem, calling the input `name` (e.g. `prompt[2]`)."""
        more = f" plus {self.completion} to generate" if self.completion else ""
        return f"{name} has {self.tokens} tokens{more}; this model takes at most {self.limit}"


def check_lengths(ids: Sequence[Sequence[int]], limit: int, completion: int = 0) -> None:
    """Raise InputTooLong for the first input whose tokens plus `completion` exceed `limit`."""
    for index, tokens in enumerate(ids):
        if len(tokens) + completion > limit:
            raise InputTooLong(index, len(tokens), limit, completion)
