"""gpu.py reads GPU memory through NVML and reports a missing GPU, driver or library as absent."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tierwise_runtime import gpu
from tierwise_runtime.gpu import cuda_ordinal, gpu_memory

GIB = 2**30


class FakeNvml:
    """Just enough of pynvml: two GPUs by index and UUID, or an init that fails."""

    class NVMLError(Exception):
        pass

    def __init__(self, init_error: bool = False) -> None:
        self.init_error = init_error
        self.devices = {0: ("GPU-aaa", 10 * GIB), 1: ("GPU-bbb", 20 * GIB)}

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.init_error:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802 - pynvml's names
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802 - pynvml's names
        if index not in self.devices:
            raise self.NVMLError("Invalid Argument")
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:  # noqa: N802 - pynvml's names
        for index, (known, _) in self.devices.items():
            if known == uuid:
                return index
        raise self.NVMLError("Not Found")

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:  # noqa: N802 - pynvml's names
        used = self.devices[handle][1]
        return SimpleNamespace(used=used, total=80 * GIB, free=80 * GIB - used)

    def nvmlDeviceGetName(self, handle: int) -> bytes:  # noqa: N802 - pynvml's names
        return f"Fake GPU {handle}".encode()


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu._nvml.cache_clear()
    yield fake
    gpu._nvml.cache_clear()


@pytest.mark.parametrize(
    ("device", "ordinal"), [("cuda", 0), ("cuda:3", 3), ("cpu", None), ("cudax", None)]
)
def test_cuda_devices_have_ordinals_and_others_none(device: str, ordinal: int | None) -> None:
    assert cuda_ordinal(device) == ordinal


def test_memory_of_the_serving_gpu_is_read_from_nvml(nvml: FakeNvml) -> None:
    reading = gpu_memory("cuda:1")
    assert reading is not None
    assert (reading.used_bytes, reading.total_bytes, reading.name) == (
        20 * GIB,
        80 * GIB,
        "Fake GPU 1",
    )


@pytest.mark.parametrize(
    ("visible", "expected_used"), [("1,0", 10 * GIB), ("GPU-bbb,GPU-aaa", 10 * GIB)]
)
def test_cuda_ordinals_follow_cuda_visible_devices(
    nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch, visible: str, expected_used: int
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    reading = gpu_memory("cuda:1")
    assert reading is not None and reading.used_bytes == expected_used


@pytest.mark.parametrize(
    ("device", "visible"),
    [("cpu", None), ("cuda:2", None), ("cuda:0", ""), ("cuda:0", "-1"), ("cuda:1", "0"),
     ("cuda:0", "GPU-unknown")],
)  # fmt: skip
def test_devices_nvml_cannot_see_read_as_absent(
    nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch, device: str, visible: str | None
) -> None:
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert gpu_memory(device) is None


def test_a_machine_without_a_driver_reads_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(init_error=True))
    gpu._nvml.cache_clear()
    try:
        assert gpu_memory("cuda:0") is None
    finally:
        gpu._nvml.cache_clear()


def test_without_the_nvml_library_gpus_read_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    gpu._nvml.cache_clear()
    try:
        assert gpu_memory("cuda:0") is None
    finally:
        gpu._nvml.cache_clear()


def _real_nvml_works() -> bool:
    gpu._nvml.cache_clear()
    return gpu._nvml() is not None


def test_this_machine_without_a_gpu_reports_none() -> None:
    if _real_nvml_works():
        pytest.skip("this machine has an NVIDIA GPU and driver (the cuda test covers it)")
    assert gpu_memory("cuda:0") is None


@pytest.mark.cuda
def test_a_real_gpu_reports_used_and_total_memory() -> None:
    if not _real_nvml_works():
        pytest.skip("no NVIDIA GPU or driver on this machine")
    reading = gpu_memory("cuda:0")
    assert reading is not None
    assert reading.total_bytes > GIB
    assert 0 < reading.used_bytes <= reading.total_bytes


@pytest.mark.cuda
def test_used_gpu_memory_grows_by_a_tensor_put_on_the_device() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or not _real_nvml_works():
        pytest.skip("no CUDA device on this machine")
    torch.zeros(1, device="cuda")  # the CUDA context is not what we measure
    torch.cuda.synchronize()
    before = gpu_memory("cuda:0")
    tensor = torch.ones(GIB // 4, device="cuda")
    torch.cuda.synchronize()
    after = gpu_memory("cuda:0")
    assert before is not None and after is not None
    assert after.used_bytes - before.used_bytes >= 0.9 * GIB
    del tensor
