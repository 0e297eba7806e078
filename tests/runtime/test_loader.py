"""load_engine: the one entry point; bad devices and sources fail before any work."""

from __future__ import annotations

import pytest
import torch

from tierwise_runtime.errors import DeviceError, LoadError, ModelSourceError
from tierwise_runtime.loader import load_engine

from .conftest import MINILM


@pytest.mark.parametrize(
    ("device", "message"),
    [("tpu", "unknown device 'tpu'"), ("mps", "unsupported device 'mps'"), ("cuda:7", "cuda:7")],
)
def test_bad_device_is_a_load_error(device: str, message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        load_engine(MINILM, "fp32", device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine with no GPU")
def test_asking_for_cuda_without_a_gpu_says_so() -> None:
    with pytest.raises(DeviceError, match="torch sees no CUDA device"):
        load_engine(MINILM, "fp32", device="cuda")


def test_every_load_failure_shares_one_error_type() -> None:
    with pytest.raises(LoadError) as info:
        load_engine("builtin://nope", "fp32")
    assert isinstance(info.value, ModelSourceError)


def test_a_custom_name_is_what_clients_will_pass() -> None:
    assert load_engine(MINILM, "fp32", name="tickets").info.model_name == "tickets"
