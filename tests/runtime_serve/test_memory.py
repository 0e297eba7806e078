"""memory.py reports what the process really holds: anonymous, file-backed and peak RSS."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest
import torch

from tierwise_runtime import memory
from tierwise_runtime.memory import read_memory, reset_peak_rss

MIB = 2**20
SIZE = 64 * MIB


def test_anonymous_rss_grows_by_a_tensor_built_in_memory() -> None:
    before = read_memory()
    tensor = torch.ones(SIZE // 4)  # ones() writes every page
    after = read_memory()
    assert after.anon_bytes - before.anon_bytes >= 0.9 * SIZE
    assert abs(after.file_bytes - before.file_bytes) < 0.1 * SIZE
    del tensor


def test_file_backed_rss_grows_by_a_mapped_file_once_touched(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    with path.open("wb") as f:
        f.write(b"\1" * SIZE)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        before = read_memory()
        pages = np.frombuffer(mapped, dtype=np.uint8)[:: mmap.PAGESIZE]
        assert int(pages.sum()) == SIZE // mmap.PAGESIZE  # every page read
        after = read_memory()
        del pages
    assert after.file_bytes - before.file_bytes >= 0.9 * SIZE
    assert after.anon_bytes - before.anon_bytes < 0.1 * SIZE


def test_peak_rss_is_at_least_the_current_rss() -> None:
    usage = read_memory()
    assert usage.peak_rss_bytes >= usage.rss_bytes > 0


def test_resetting_the_peak_forgets_memory_already_freed() -> None:
    tensor = torch.ones(2 * SIZE // 4)
    peak_with_tensor = read_memory().peak_rss_bytes
    del tensor
    if not reset_peak_rss():
        pytest.skip("this kernel cannot reset the peak RSS (/proc/self/clear_refs)")
    assert read_memory().peak_rss_bytes <= peak_with_tensor - SIZE


def test_without_proc_the_figures_come_from_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_STATUS", Path("/nonexistent/status"))
    usage = read_memory()
    assert usage.rss_bytes > 100 * MIB  # torch alone costs more
    assert usage.peak_rss_bytes >= usage.rss_bytes
