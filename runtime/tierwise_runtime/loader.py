"""`load_engine`: a model URI at a precision on a device or offload tier, ready to serve."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tierwise_operator.api import Precision, Task, TierKind

from . import calibration as calib
from .checkpoint import Checkpoint, read_checkpoint
from .engine import Engine, EngineInfo
from .engines import DecoderEngine, EncoderEngine
from .errors import DeviceError
from .materialize import build_on_meta, materialize, parameter_count
from .models.bert import BertEncoder
from .models.kv_cache import bytes_per_token
from .models.llama import Llama, LlamaConfig
from .offload import load_offloaded, offload_folder
from .pages import trim_heap
from .quantize import (
    Int4WeightOnlyConfig,
    compute_dtype,
    config_for,
    parse_precision,
    weight_bytes,
)
from .sources import default_name, resolve_source


def load_engine(
    uri: str,
    precision: Precision | str,
    device: str = "cpu",
    *,
    offload_dir: str | Path | None = None,
    group_size: int | None = None,
    name: str | None = None,
    calibration: str | None = None,
) -> Engine:
    """Loads `uri` at `precision` on `device` ("cpu", "cuda", "cuda:N"); with `offload_dir`,
    weights live in a memory-mapped file there. int4 takes GPTQ codes calibrated on the
    bundled calibration texts unless `calibration` is `rtn` (offload: always rtn). Raises a
    LoadError subclass naming the problem."""
    prec = parse_precision(precision)
    config = config_for(prec, group_size)
    codes = calib.resolve(prec, calibration, offload=offload_dir is not None)
    dev = parse_device(device)
    path = resolve_source(uri)
    ckpt = read_checkpoint(path)
    skeleton = build_on_meta(ckpt.config)
    params = parameter_count(skeleton)
    if offload_dir is not None:
        folder = offload_folder(Path(offload_dir), ckpt, prec, config, dev)
        model = load_offloaded(ckpt, config, dev, folder)
        tier = TierKind.OFFLOAD
    elif codes is calib.Calibration.GPTQ:
        assert isinstance(config, Int4WeightOnlyConfig)
        model = calib.materialize_gptq(skeleton, ckpt, config, dev)
        tier = TierKind.GPU if dev.type == "cuda" else TierKind.CPU
    else:
        model = materialize(skeleton, ckpt, config, dev)
        tier = TierKind.GPU if dev.type == "cuda" else TierKind.CPU
    trim_heap()
    info = EngineInfo(
        model_name=name or default_name(uri, path),
        task=Task.TEXT_EMBEDDING if isinstance(model, BertEncoder) else Task.TEXT_GENERATION,
        architecture=ckpt.architecture,
        precision=prec,
        device=str(dev),
        tier=tier,
        max_tokens=ckpt.max_tokens,
        weight_bytes=weight_bytes(model),
        parameters=params,
        calibration=None if codes is None else codes.value,
        **_shape_info(model, compute_dtype(config)),
    )
    return _engine(model, ckpt, info, dev, compute_dtype(config))


def parse_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise DeviceError(f"unsupported device {device!r}: use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA device")
    index = dev.index or 0
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {device!r} asked for, but only {torch.cuda.device_count()} exist"
        )
    return torch.device("cuda", index)


def _shape_info(model: nn.Module, dtype: torch.dtype) -> dict[str, int]:
    """Embedding width of encoders; KV-cache bytes per token of decoders."""
    if isinstance(model, BertEncoder):
        return {"embedding_dim": model.config.hidden_size}
    cfg = model.config
    assert isinstance(cfg, LlamaConfig)
    return {
        "kv_cache_bytes_per_token": bytes_per_token(
            cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, dtype
        )
    }


def _engine(
    model: nn.Module, ckpt: Checkpoint, info: EngineInfo, dev: torch.device, dtype: torch.dtype
) -> Engine:
    if isinstance(model, BertEncoder):
        return EncoderEngine(model, ckpt.tokenizer, info, dev)
    assert isinstance(model, Llama)
    eos = ckpt.eos_token_ids
    return DecoderEngine(model, ckpt.tokenizer, info, dev, eos_token_ids=eos, dtype=dtype)
