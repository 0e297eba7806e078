"""CUDA benchmark on a synthetic ~1B-parameter Llama: each precision GPU-resident and
offloaded (blocks streamed from a memory map), plus the raw Linear kernels behind them.

    python bench/runtime_cuda.py [--out DIR] [--quick] [--budget-s 240]

Random weights (no model files on GPU machines): the figures are speed and memory, not
quality. Writes runtime_cuda.json and prints tables; every step records its error and the
run goes on, so one broken path does not hide the others.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

SIZES = {
    "vocab": 32000,
    "dim": 2048,
    "layers": 18,
    "heads": 16,
    "kv_heads": 8,
    "intermediate": 5632,
}
QUICK_SIZES = {**SIZES, "layers": 4}
CPU_SMOKE_SIZES = {
    "vocab": 2048,
    "dim": 256,
    "layers": 2,
    "heads": 4,
    "kv_heads": 2,
    "intermediate": 512,
}
DEVICE = "cuda"
"""`--device cpu` smoke-tests this script's code paths on a machine without a GPU."""


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], reps: int) -> float:
    """Median milliseconds of fn, after two warm-ups (device-synchronised)."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(1e3 * (time.perf_counter() - start))
    return sorted(times)[len(times) // 2]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:200]


def kernels(reps: int) -> list[dict[str, Any]]:
    """One Linear (out 5632, in 2048) at several batch rows, through each precision's kernel."""
    from tierwise_runtime.quantize import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_

    lin = nn.Linear(2048, 5632, bias=False, device=DEVICE)
    layers: dict[str, nn.Module] = {
        "bf16 F.linear": copy.deepcopy(lin).to(torch.bfloat16),
        "fp16 F.linear": copy.deepcopy(lin).to(torch.float16),
        "int8 dequant+cuBLAS": quantize_(copy.deepcopy(lin), Int8WeightOnlyConfig()),
        "int4 tinygemm g128": quantize_(copy.deepcopy(lin), Int4WeightOnlyConfig()),
    }
    rows = []
    for m in (1, 16, 256, 2048):
        for name, layer in layers.items():
            dtype = torch.float16 if name.startswith("fp16") else torch.bfloat16
            x = torch.randn(m, 2048, device=DEVICE, dtype=dtype)
            rows.append(_kernel_row(name, m, lambda layer=layer, x=x: layer(x), reps))
        q = layers["int8 dequant+cuBLAS"]
        x = torch.randn(m, 2048, device=DEVICE, dtype=torch.bfloat16)

        def int8pack(q: nn.Module = q, x: torch.Tensor = x) -> object:
            return torch.ops.aten._weight_int8pack_mm(x, q.weight, q.scales)

        rows.append(_kernel_row("int8 aten._weight_int8pack_mm", m, int8pack, reps))
    return rows


def _kernel_row(name: str, m: int, fn: Callable[[], object], reps: int) -> dict[str, Any]:
    try:
        ms = _time(fn, reps)
        return {"kernel": name, "rows": m, "ms": ms, "tflops": 2 * m * 2048 * 5632 / ms / 1e9}
    except Exception as exc:
        return {"kernel": name, "rows": m, "error": _one_line(exc)}


def model_case(uri: str, precision: str, offload: Path | None, quick: bool) -> dict[str, Any]:
    from tierwise_runtime.engine import SamplingParams
    from tierwise_runtime.loader import load_engine

    if DEVICE == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    engine = load_engine(uri, precision, device=DEVICE, offload_dir=offload)
    _sync()
    row: dict[str, Any] = {
        "precision": precision,
        "tier": engine.info.tier.value,
        "weight_gb": engine.info.weight_bytes / 1e9,
        "load_s": time.perf_counter() - start,
        "kv_bytes_per_token": engine.info.kv_cache_bytes_per_token,
    }
    model = engine.model  # type: ignore[union-attr]
    batch, seq = (2, 64) if quick else (8, 512)
    ids = torch.randint(3, model.config.vocab_size, (batch, seq), device=DEVICE)
    pos = torch.arange(seq, device=DEVICE).expand(batch, seq)

    def prefill() -> None:
        with torch.inference_mode():
            model(ids, pos, last_only=True)

    row["prefill_tokens_per_s"] = batch * seq / _time(prefill, 3 if quick else 5) * 1e3
    for b in (1, 16):
        prompts = [list(range(10, 74))] * b
        # Offload re-reads every block per token: fewer tokens keep its case inside the budget.
        new = 8 if quick or offload else 64
        params = [SamplingParams(max_tokens=new, temperature=0)] * b
        list(engine.generate(prompts[:1], params[:1]))  # type: ignore[union-attr]
        _sync()
        t = time.perf_counter()
        steps = list(engine.generate(prompts, params))  # type: ignore[union-attr]
        _sync()
        row[f"decode_b{b}_tokens_per_s"] = b * len(steps) / (time.perf_counter() - t)
    row["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1e9 if DEVICE == "cuda" else 0.0
    return row


def _print_tables(result: dict[str, Any]) -> None:
    params = result["parameters"] / 1e9
    print(f"\n{result['device']}, torch {result['torch']}, model {params:.2f}B parameters")
    print(f"\n{'kernel':32} {'rows':>5} {'ms':>8} {'TFLOP/s':>8}")
    for r in result["kernels"]:
        tail = r.get("error") or f"{r['ms']:8.3f} {r['tflops']:8.1f}"
        print(f"{r['kernel']:32} {r['rows']:5} {tail}")
    cols = ["weight_gb", "load_s", "peak_gpu_gb", "prefill_tokens_per_s"]
    cols += ["decode_b1_tokens_per_s", "decode_b16_tokens_per_s"]
    print(f"\n{'precision':9} {'tier':8} " + " ".join(f"{c:>12.12}" for c in cols))
    for r in result["models"]:
        if "error" in r:
            print(f"{r['precision']:9} {r['tier']:8} error: {r['error']}")
        else:
            print(f"{r['precision']:9} {r['tier']:8} " + " ".join(f"{r[c]:12.2f}" for c in cols))


def run_cases(uri: str, root: Path, args: argparse.Namespace, began: float) -> list[dict[str, Any]]:
    cases: list[tuple[str, Path | None]] = [(p, None) for p in ("bf16", "fp16", "int8", "int4")]
    cases += [(p, root / "offload") for p in ("bf16", "int8", "int4")]
    rows = []
    for precision, offload in cases:
        tier = "offload" if offload else "gpu"
        if time.perf_counter() - began > args.budget_s:
            rows.append({"precision": precision, "tier": tier, "error": "skipped: budget spent"})
            continue
        try:
            rows.append(model_case(uri, precision, offload, args.quick))
        except Exception as exc:
            traceback.print_exc()
            rows.append({"precision": precision, "tier": tier, "error": _one_line(exc)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    global DEVICE  # noqa: PLW0603 - one switch for the whole script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--quick", action="store_true", help="4 layers, fewer repetitions")
    parser.add_argument("--budget-s", type=float, default=240, help="skip cases once past this")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    args = parser.parse_args()
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/runtime_cuda.py needs a CUDA device")
    from tierwise_runtime.synthetic import llama_parameters, write_llama

    began = time.perf_counter()
    sizes = CPU_SMOKE_SIZES if DEVICE == "cpu" else QUICK_SIZES if args.quick else SIZES
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu",
        "torch": torch.__version__,
        "parameters": llama_parameters(**sizes, tied=False),
        "kernels": kernels(5 if args.quick else 20),
    }
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        folder = write_llama(Path(tmp) / "llama", context=2048, dtype=torch.bfloat16, **sizes)
        result["write_checkpoint_s"] = time.perf_counter() - t
        result["models"] = run_cases(f"file://{folder}", Path(tmp), args, began)
    result["total_s"] = time.perf_counter() - began
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runtime_cuda.json").write_text(json.dumps(result, indent=2))
    _print_tables(result)


if __name__ == "__main__":
    main()
