"""Checks a GGUF file's declared sizes against the file before any reader allocates for them.

The `gguf` reader trusts the header: an array that declares 2^40 items is read
item by item, and a tensor may point past the end of a truncated file. This walk
reads only the header, the metadata and the tensor table, with every count,
length and offset checked against the bytes that remain, so a lying or
truncated file fails at once with an error naming the field.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from pathlib import Path

import gguf

from ..errors import CheckpointError

_MAGIC = b"GGUF"
_VERSIONS = (2, 3)
#: Item sizes of GGUF's fixed-size value types (8 is a string, 9 an array).
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
#: Deeper array nesting than any writer produces.
_MAX_ARRAY_DEPTH = 3
#: GGML tensors have at most four dimensions.
_MAX_DIMS = 4
#: A key or tensor name longer than this is not a name.
_MAX_NAME = 4096
_DEFAULT_ALIGNMENT = 32


class _Cursor:
    """Little-endian reads from the mapped file, each checked against its end."""

    def __init__(self, data: mmap.mmap, name: str) -> None:
        self.data, self.pos, self.size, self.name = data, 0, len(data), name

    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, count: int, what: str) -> None:
        if count > self.remaining():
            raise _bad(
                self.name,
                f"{what} needs {count} bytes at offset {self.pos}, but the "
                f"file has {self.remaining()} left (truncated or a lying header)",
            )

    def unpack(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        self.need(size, what)
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def string(self, what: str, limit: int | None = None) -> str:
        length = self.unpack("Q", f"{what} (length)")
        if limit is not None and length > limit:
            raise _bad(self.name, f"{what} declares {length} bytes (> {limit})")
        self.need(length, what)
        raw = bytes(self.data[self.pos : self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")


def _bad(name: str, message: str) -> CheckpointError:
    return CheckpointError(f"cannot read GGUF {name}: {message}")


def check_gguf(path: Path) -> None:
    """Raise CheckpointError naming the first field whose declared size the file cannot hold."""
    try:
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            _walk(_Cursor(data, path.name))
    except (OSError, ValueError) as exc:  # an empty file cannot be mapped
        raise CheckpointError(f"cannot read GGUF {path}: {exc}") from None


def _walk(cur: _Cursor) -> None:
    cur.need(4, "the magic number")
    if bytes(cur.data[:4]) != _MAGIC:
        raise _bad(cur.name, "not a GGUF file (no GGUF magic number)")
    cur.pos = 4
    version = cur.unpack("I", "header.version")
    if version not in _VERSIONS:
        raise _bad(cur.name, f"header.version {version} is not 2 or 3")
    tensors = cur.unpack("Q", "header.tensor_count")
    entries = cur.unpack("Q", "header.metadata_kv_count")
    # The smallest metadata entry is 13 bytes and the smallest tensor entry 24.
    _bounded(cur, entries, 13, "header.metadata_kv_count")
    _bounded(cur, tensors, 24, "header.tensor_count")
    alignment = _DEFAULT_ALIGNMENT
    for index in range(entries):
        key = cur.string(f"metadata entry {index} (its key)", _MAX_NAME)
        kind = cur.unpack("I", f"metadata {key} (its type)")
        value = _value(cur, kind, key, depth=0)
        if key == "general.alignment":
            alignment = value if isinstance(value, int) else -1
            if alignment < 1 or alignment & (alignment - 1) or alignment > 2**20:
                raise _bad(cur.name, f"general.alignment {value} is not a power of two")
    ends = [_tensor(cur, index) for index in range(tensors)]
    start = -(-cur.pos // alignment) * alignment
    for name, end in ends:
        if start + end > cur.size:
            raise _bad(
                cur.name,
                f"tensor {name} ends at byte {start + end}, past the end of "
                f"the file ({cur.size} bytes): truncated or a lying header",
            )


def _bounded(cur: _Cursor, count: int, least: int, what: str) -> None:
    if count * least > cur.remaining():
        raise _bad(
            cur.name,
            f"{what} declares {count} entries of {least} bytes or more; the "
            f"file has {cur.remaining()} bytes left",
        )


def _value(cur: _Cursor, kind: int, key: str, depth: int) -> object:
    """Skip one value (returning it when it is a small integer); arrays checked as a whole."""
    if kind in _FIXED:
        size = _FIXED[kind]
        cur.need(size, f"metadata {key}")
        value = (
            int.from_bytes(cur.data[cur.pos : cur.pos + size], "little")
            if kind in (4, 10)
            else None
        )
        cur.pos += size
        return value
    if kind == _STRING:
        length = cur.unpack("Q", f"metadata {key} (string length)")
        cur.need(length, f"metadata {key} (a string of {length} bytes)")
        cur.pos += length
        return None
    if kind != _ARRAY:
        raise _bad(cur.name, f"metadata {key} has unknown type {kind}")
    if depth >= _MAX_ARRAY_DEPTH:
        raise _bad(cur.name, f"metadata {key} nests arrays too deeply")
    item = cur.unpack("I", f"metadata {key} (array item type)")
    count = cur.unpack("Q", f"metadata {key} (array length)")
    least = _FIXED.get(item, 8 if item in (_STRING, _ARRAY) else 0)
    if least == 0:
        raise _bad(cur.name, f"metadata {key} has arrays of unknown type {item}")
    if count * least > cur.remaining():
        raise _bad(
            cur.name,
            f"metadata {key} declares {count} items of {least} bytes or more; "
            f"the file has {cur.remaining()} bytes left",
        )
    if item in _FIXED:
        cur.pos += count * least
        return None
    skip: Callable[[], object] = lambda: _value(cur, item, key, depth + 1)  # noqa: E731
    if item == _STRING:
        skip = lambda: _skip_string(cur, key)  # noqa: E731
    for _ in range(count):
        skip()
    return None


def _skip_string(cur: _Cursor, key: str) -> None:
    length = cur.unpack("Q", f"metadata {key} (string length)")
    cur.need(length, f"metadata {key} (a string of {length} bytes)")
    cur.pos += length


def _tensor(cur: _Cursor, index: int) -> tuple[str, int]:
    """One tensor-table entry: its name and the end of its data past the data section's start."""
    name = cur.string(f"tensor {index} (its name)", _MAX_NAME)
    dims = cur.unpack("I", f"tensor {name} (n_dims)")
    if not 1 <= dims <= _MAX_DIMS:
        raise _bad(cur.name, f"tensor {name} declares {dims} dimensions (1-4)")
    shape = [cur.unpack("Q", f"tensor {name} (shape)") for _ in range(dims)]
    kind = cur.unpack("I", f"tensor {name} (type)")
    offset = cur.unpack("Q", f"tensor {name} (offset)")
    try:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        raise _bad(cur.name, f"tensor {name} has unknown type {kind}") from None
    elements = 1
    for dim in shape:
        elements *= dim
    if shape[0] % block:
        raise _bad(
            cur.name, f"tensor {name} rows of {shape[0]} do not split into blocks of {block}"
        )
    return name, offset + elements // block * size
