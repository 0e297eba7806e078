"""Engines: loaded models behind the contract in `tierwise_runtime.engine`."""

from .embedding import EncoderEngine
from .generation import DecoderEngine

__all__ = ["DecoderEngine", "EncoderEngine"]
