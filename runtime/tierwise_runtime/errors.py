"""Errors the runtime raises for bad models, settings and inputs; each message names the problem."""

from __future__ import annotations


class LoadError(Exception):
    """A model could not be loaded as asked; the message says why in one line."""


class ModelSourceError(LoadError):
    """The model URI is malformed, names an unknown scheme or points at nothing readable."""


class CheckpointError(LoadError):
    """The files were found but are not a checkpoint this runtime can serve."""


class PrecisionError(LoadError):
    """The precision (or its group size) is unknown or cannot apply to this model."""


class DeviceError(LoadError):
    """The device is unknown or not present on this machine."""


class InputError(ValueError):
    """A request's input cannot be served (empty, too long, out of range)."""


class ShuttingDown(RuntimeError):
    """The server stopped before this answer ended (the drain ran out of time)."""
