"""Each precision keeps embeddings close to fp32 and holds the bytes it claims."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from tierwise_operator.api import Precision
from tierwise_runtime.engine import Engine
from tierwise_runtime.errors import PrecisionError
from tierwise_runtime.loader import load_engine
from tierwise_runtime.quantize import (
    CastConfig,
    Int4WeightOnlyConfig,
    Int4WeightOnlyLinear,
    Int8WeightOnlyConfig,
    Int8WeightOnlyLinear,
    config_for,
    quantize_,
)

from .conftest import MINILM, embed_all

COSINE_FLOORS = [
    ("bf16", None, 0.999),
    ("fp16", None, 0.999),
    ("int8", None, 0.999),
    ("int4", 128, 0.94),
    ("int4", 64, 0.95),
    ("int4", 32, 0.97),
]


@pytest.mark.parametrize("case", COSINE_FLOORS, ids=lambda c: f"{c[0]}-g{c[1]}")
def test_mean_cosine_to_fp32_stays_above_the_floor(
    minilm: Callable[..., Engine],
    sentences: list[str],
    minilm_fp32_embeddings: torch.Tensor,
    case: tuple[str, int | None, float],
) -> None:
    precision, group, floor = case
    got = embed_all(minilm(precision, group), sentences)
    cosine = (got * minilm_fp32_embeddings).sum(dim=1)
    assert cosine.mean() >= floor, f"{precision} g{group}: mean cosine {cosine.mean():.5f}"


def _linear_bytes(engine: Engine) -> tuple[int, int]:
    """(bytes of the quantized Linear layers, their fp32 bytes)."""
    held = fp32 = 0
    for module in engine.model.modules():  # type: ignore[union-attr]
        if isinstance(module, Int8WeightOnlyLinear | Int4WeightOnlyLinear):
            held += sum(t.numel() * t.element_size() for t in module.state_dict().values())
            fp32 += 4 * module.out_features * (module.in_features + int(module.bias is not None))
    return held, fp32


@pytest.mark.parametrize(("precision", "ceiling"), [("int8", 0.27), ("int4", 0.15)])
def test_quantized_layers_hold_a_fraction_of_their_fp32_bytes(
    minilm: Callable[..., Engine], precision: str, ceiling: float
) -> None:
    held, fp32 = _linear_bytes(minilm(precision))
    assert fp32 > 0
    assert held / fp32 <= ceiling, f"{precision}: {held / fp32:.3f} of fp32"


def test_weight_bytes_order_by_precision(minilm: Callable[..., Engine]) -> None:
    b = {p: minilm(p).info.weight_bytes for p in ("fp32", "bf16", "fp16", "int8", "int4")}
    assert b["int4"] < b["int8"] < b["bf16"] == b["fp16"] == b["fp32"] // 2


@pytest.mark.parametrize(
    ("precision", "group", "message"),
    [
        ("int3", None, "unknown precision 'int3'"),
        ("fp8", None, "unknown precision 'fp8'"),
        ("int8", 64, "group size applies to int4 only"),
        ("int4", 48, "int4 group size 48 is not supported"),
    ],
)
def test_bad_precision_settings_fail_before_loading(
    precision: str, group: int | None, message: str
) -> None:
    with pytest.raises(PrecisionError, match=message):
        load_engine(MINILM, precision, group_size=group)


@pytest.mark.parametrize(
    ("precision", "expected"),
    [
        ("fp32", CastConfig(torch.float32)),
        ("bf16", CastConfig(torch.bfloat16)),
        ("fp16", CastConfig(torch.float16)),
        ("int8", Int8WeightOnlyConfig()),
        ("int4", Int4WeightOnlyConfig(group_size=128)),
        (Precision.INT4, Int4WeightOnlyConfig(group_size=128)),
    ],
)
def test_each_precision_has_a_config(precision: str, expected: object) -> None:
    assert config_for(precision) == expected


def _layer(out_f: int, in_f: int, bias: bool = True) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(in_f, out_f, bias=bias)


@pytest.mark.parametrize("bias", [True, False])
def test_int8_layer_computes_its_dequantized_weights(bias: bool) -> None:
    lin = _layer(96, 256, bias)
    q = quantize_(lin, Int8WeightOnlyConfig())
    assert isinstance(q, Int8WeightOnlyLinear) and q.weight.dtype == torch.int8
    x = torch.randn(5, 7, 256).bfloat16()
    deq = q.weight.float() * q.scales.float()[:, None]
    ref = x.float() @ deq.T + (q.bias.float() if q.bias is not None else 0)
    torch.testing.assert_close(q(x).float(), ref, atol=0.05, rtol=0.02)
    assert (deq - lin.weight).abs().max() <= q.scales.float().max() / 2 + 1e-6


@pytest.mark.parametrize("group", [32, 64, 128])
def test_int4_layer_computes_its_dequantized_weights(group: int) -> None:
    lin = _layer(64, 256)
    q = quantize_(lin, Int4WeightOnlyConfig(group_size=group))
    assert isinstance(q, Int4WeightOnlyLinear) and q.group_size == group
    x = torch.randn(3, 256).bfloat16()
    dense = torch.ops.aten._weight_int4pack_mm_for_cpu(
        torch.eye(256, dtype=torch.bfloat16), q.weight, group, q.scales_and_zeros
    ).T.float()  # the layer's dequantized weight [64, 256]
    assert (dense - lin.weight).abs().max() < 0.2 * lin.weight.abs().max()
    ref = x.float() @ dense.T + q.bias.float()  # type: ignore[union-attr]
    torch.testing.assert_close(q(x).float(), ref, atol=0.05, rtol=0.02)


def test_int4_group_size_falls_back_to_the_largest_that_divides_the_inputs() -> None:
    model = nn.Sequential(_layer(64, 576), _layer(64, 96))
    quantize_(model, Int4WeightOnlyConfig(group_size=128))
    assert [m.group_size for m in model] == [64, 32]  # type: ignore[union-attr]


def test_int4_leaves_a_layer_no_group_size_fits_in_bf16() -> None:
    model = quantize_(nn.Sequential(_layer(64, 40)), Int4WeightOnlyConfig())
    assert isinstance(model[0], nn.Linear) and model[0].weight.dtype == torch.bfloat16


def test_quantizing_on_meta_gives_the_shapes_of_real_quantization() -> None:
    real = quantize_(nn.Sequential(_layer(64, 256)), Int4WeightOnlyConfig())
    with torch.device("meta"):
        meta = nn.Sequential(nn.Linear(256, 64))
    meta = quantize_(meta, Int4WeightOnlyConfig(), "cpu")
    shapes = {k: (v.shape, v.dtype) for k, v in real.state_dict().items()}
    assert {k: (v.shape, v.dtype) for k, v in meta.state_dict().items()} == shapes
