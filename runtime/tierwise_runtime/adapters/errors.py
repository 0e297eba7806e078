"""Errors about one adapter: each names the adapter, so the base and the others keep serving."""

from __future__ import annotations

from ..errors import LoadError


class AdapterError(LoadError):
    """An adapter cannot be served (missing files, a shape or module the base lacks...)."""

    def __init__(self, adapter: str, problem: str) -> None:
        super().__init__(f"adapter {adapter!r}: {problem}")
        self.adapter = adapter
        self.problem = problem


class UnknownAdapter(LookupError):
    """A request named an adapter this server does not list."""


class AdapterSlotsBusy(RuntimeError):
    """Every resident slot holds an adapter that running sequences still use."""
