"""Checkpoint readers: Hugging Face folders and GGUF files, mapped lazily into our names."""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError
from .base import Checkpoint, TensorSource
from .gguf_reader import read_gguf
from .hf import read_hf

__all__ = ["Checkpoint", "TensorSource", "read_checkpoint"]


#: What a reader trips on in a malformed file it did not check field by field.
_MALFORMED = (
    KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
    ZeroDivisionError, RecursionError, UnicodeError,
)  # fmt: skip


def read_checkpoint(path: Path) -> Checkpoint:
    """Reads the checkpoint at `path`: a `.gguf` file, or a folder with config.json or one .gguf.
    Every failure is a CheckpointError (a LoadError) saying what is wrong."""
    try:
        return _read(path)
    except _MALFORMED as exc:
        field = f" (field {exc.args[0]!r})" if isinstance(exc, KeyError) and exc.args else ""
        raise CheckpointError(
            f"{path}: malformed checkpoint{field}: {type(exc).__name__}: {exc}"[:400]
        ) from None


def _read(path: Path) -> Checkpoint:
    if path.is_file():
        if path.suffix == ".gguf":
            return read_gguf(path)
        raise CheckpointError(f"{path} is a file but not a .gguf checkpoint")
    if (path / "config.json").is_file():
        return read_hf(path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return read_gguf(ggufs[0])
    if ggufs:
        raise CheckpointError(f"{path} holds several .gguf files; point at one of them")
    raise CheckpointError(f"{path} holds neither config.json nor a .gguf file")
