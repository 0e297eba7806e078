"""Checkpoint readers: Hugging Face folders and GGUF files, mapped lazily into our names."""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError
from .base import Checkpoint, TensorSource
from .gguf_reader import read_gguf
from .hf import read_hf

__all__ = ["Checkpoint", "TensorSource", "read_checkpoint"]


def read_checkpoint(path: Path) -> Checkpoint:
    """Reads the checkpoint at `path`: a `.gguf` file, or a folder with config.json or one .gguf."""
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
