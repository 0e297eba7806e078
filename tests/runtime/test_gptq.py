"""GPTQ int4: codes fitted to calibration inputs keep more of each layer's output than
round-to-nearest at the same bytes, in the format the int4 kernels consume."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources

import pytest
import torch

from tierwise_operator.api import Precision
from tierwise_runtime.calibration import Calibration, calibration_texts, resolve
from tierwise_runtime.engine import Engine
from tierwise_runtime.engines import DecoderEngine
from tierwise_runtime.errors import PrecisionError
from tierwise_runtime.profiler.accuracy import generation_accuracy, token_reference
from tierwise_runtime.profiler.evalset import load_eval_set
from tierwise_runtime.quantize.calibrate import apply_codes, fit_gptq
from tierwise_runtime.quantize.configs import Int4WeightOnlyConfig
from tierwise_runtime.quantize.gptq import HessianAccumulator, gptq_codes
from tierwise_runtime.quantize.linear import Int4WeightOnlyLinear, quantize_groups

from .conftest import DATA, embed_all


def _correlated_inputs(rows: int, features: int) -> torch.Tensor:
    """Activations as transformers make them: correlated, a few channels much larger."""
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(features, features, generator=gen) / features**0.5
    x = torch.randn(rows, features, generator=gen) @ (torch.eye(features) + 2 * mix)
    x[:, :4] *= 20
    return x


def _dequantize(q: torch.Tensor, s: torch.Tensor, z: torch.Tensor, group: int) -> torch.Tensor:
    n, k = q.shape
    g = q.float().reshape(n, k // group, group) * s.float()[..., None]
    return (g + (z.float() - 8 * s.float())[..., None]).reshape(n, k)


def test_gptq_codes_lose_less_layer_output_than_round_to_nearest() -> None:
    x = _correlated_inputs(2048, 256)
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(1))
    acc = HessianAccumulator(256)
    acc.add(x)
    gptq = gptq_codes(w, acc.h, 128, torch.bfloat16)
    rtn = quantize_groups(w, 128, torch.bfloat16)

    def output_error(codes: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
        return float((x @ (w - _dequantize(*codes, 128)).T).pow(2).mean())

    assert gptq[0].dtype == torch.int32 and 0 <= int(gptq[0].min()) <= int(gptq[0].max()) <= 15
    assert gptq[1].shape == gptq[2].shape == (64, 2) and gptq[1].dtype == torch.bfloat16
    assert output_error(gptq) < 0.7 * output_error(rtn)


def test_fitted_module_serves_its_dequantized_codes_through_the_int4_kernel() -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(256, 48), torch.nn.GELU(), torch.nn.Linear(48, 16))
    x = _correlated_inputs(512, 256)
    config = Int4WeightOnlyConfig(group_size=128)
    codes = fit_gptq(module, lambda: module(x), config, "cpu")
    simulated = module(x[:16]).detach()  # weights are now the dequantized codes
    served = apply_codes(module, codes, config, "cpu")
    assert isinstance(served[0], Int4WeightOnlyLinear)
    assert not isinstance(served[2], Int4WeightOnlyLinear)  # 48 inputs: no group size fits
    with torch.inference_mode():
        got = served(x[:16].bfloat16()).float()
    assert torch.allclose(got, simulated, rtol=0.05, atol=0.05 * float(simulated.abs().mean()))


def test_no_calibration_text_is_an_eval_text() -> None:
    bundled = resources.files("tierwise_runtime").joinpath("data/eval_default.jsonl")
    evals = {json.loads(line)["text"] for line in bundled.read_text().splitlines() if line}
    evals |= set((DATA / "sentences.txt").read_text().splitlines())
    texts = calibration_texts()
    assert len(texts) >= 64 and not set(texts) & evals


@pytest.mark.parametrize(
    ("precision", "asked", "offload", "chosen"),
    [
        (Precision.INT4, None, False, Calibration.GPTQ),
        (Precision.INT4, None, True, Calibration.RTN),
        (Precision.INT4, "rtn", False, Calibration.RTN),
        (Precision.INT8, None, False, None),
    ],
)
def test_int4_is_calibrated_unless_asked_or_offloaded(
    precision: Precision, asked: str | None, offload: bool, chosen: Calibration | None
) -> None:
    assert resolve(precision, asked, offload) is chosen


@pytest.mark.parametrize(
    ("precision", "asked", "offload", "message"),
    [
        (Precision.INT8, "gptq", False, "calibration applies to int4 only"),
        (Precision.INT4, "awq", False, "unknown calibration 'awq'"),
        (Precision.INT4, "gptq", True, "offload serves rtn int4"),
    ],
)
def test_a_calibration_that_cannot_apply_is_refused(
    precision: Precision, asked: str, offload: bool, message: str
) -> None:
    with pytest.raises(PrecisionError, match=message):
        resolve(precision, asked, offload)


@pytest.mark.slow
def test_gptq_int4_g128_keeps_minilm_above_0_98_mean_cosine(
    minilm: Callable[..., Engine], sentences: list[str], minilm_fp32_embeddings: torch.Tensor
) -> None:
    gptq, rtn = minilm("int4", 128), minilm("int4", 128, "rtn")
    assert (gptq.info.calibration, rtn.info.calibration) == ("gptq", "rtn")
    assert gptq.info.weight_bytes == rtn.info.weight_bytes
    cosine = {
        e.info.calibration: float((embed_all(e, sentences) * minilm_fp32_embeddings).sum(1).mean())
        for e in (gptq, rtn)
    }
    assert cosine["gptq"] >= 0.98 > cosine["rtn"], cosine


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the GPTQ load of SmolLM2 takes minutes on a 2-core CPU
def test_gptq_int4_loses_less_smollm2_perplexity_than_round_to_nearest(
    smollm: Callable[..., Engine],
) -> None:
    texts = load_eval_set(None, limit=16).texts
    fp32, gptq, rtn = smollm("fp32"), smollm("int4", "gptq"), smollm("int4", "rtn")
    assert isinstance(fp32, DecoderEngine) and isinstance(gptq, DecoderEngine)
    assert isinstance(rtn, DecoderEngine)
    reference = token_reference(fp32, texts)
    delta = [generation_accuracy(reference, e, texts).delta for e in (gptq, rtn)]
    assert delta[0] < delta[1], delta
