"""Eight LoRA fine-tunes on one replica against eight separate replicas, side by side in one
run: memory per replica, tokens/s at eight concurrent streams, and a cold adapter load.

    PYTHONPATH=operator:runtime python bench/adapters.py              # SmolLM2-135M fp32, CPU
    PYTHONPATH=operator:runtime python bench/adapters.py --quick      # fewer tokens
    PYTHONPATH=operator:runtime python bench/adapters.py --device cuda --precision bf16

Each configuration runs in its own process, so its resident memory is its own:

- `separate`: what each of eight separate replicas is: the base model serving one
  fine-tune (a merged fine-tune is the base's size), one stream. Eight of them hold
  eight copies, so their memory is 8x one replica's, and each needs its own share of
  hardware for its stream.
- `adapters`: one replica with the base and all eight adapters resident, serving eight
  concurrent streams, one per adapter, in one running batch (per-row LoRA).
- `base`: the same replica serving eight streams of the base alone (the LoRA overhead).

Adapters are random PEFT-format LoRAs written locally (rank `--rank` on every projection).
Greedy decoding; every stream decodes `--tokens` tokens. Memory is process RSS on CPU
(the fp32 weights are a memory map: file-backed pages count) and the CUDA allocator's
peak on GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
PROMPTS = [
    "The capital of France is",
    "Write a haiku about the sea:",
    "def fibonacci(n):",
    "Three tips for a job interview:",
    "The best way to learn a language is",
    "Once upon a time, in a small village,",
    "SQL to count the rows of a table:",
    "Explain photosynthesis to a child:",
]
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def hf_config(engine: Any) -> dict[str, Any]:
    cfg = engine.model.config
    return {
        "model_type": "llama", "hidden_size": cfg.dim, "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim, "intermediate_size": cfg.intermediate_size,
    }  # fmt: skip


def memory_bytes(device: str) -> dict[str, int]:
    from tierwise_runtime.memory import read_memory

    mem = read_memory()
    out = {"rss": mem.rss_bytes, "peak_rss": mem.peak_rss_bytes, "anon": mem.anon_bytes}
    if device.startswith("cuda"):
        out["cuda_peak"] = torch.cuda.max_memory_allocated()
        out["cuda_now"] = torch.cuda.memory_allocated()
    return out


def decode(engine: Any, adapters: list[str | None], tokens: int) -> tuple[int, float]:
    """All streams in one running batch; (tokens generated, seconds)."""
    from tierwise_runtime.engine import SamplingParams

    prompts = engine.tokenize(PROMPTS[: len(adapters)])
    params = [SamplingParams(max_tokens=tokens, temperature=0.0, adapter=a) for a in adapters]
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    produced = sum(sum(t is not None for t in step) for step in engine.generate(prompts, params))
    sync()
    return produced, time.perf_counter() - started


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration in this process; its figures as JSON."""
    from tierwise_runtime.adapters.attach import ADAPTER_DTYPES, attach_adapters
    from tierwise_runtime.adapters.manager import AdapterSpec
    from tierwise_runtime.loader import load_engine

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = load_engine(args.model, args.precision, device=args.device)
    decode(engine, [None], 2)  # warm-up
    names = [f"tuned-{i}" for i in range(8)]
    out: dict[str, Any] = {"mode": args.child}
    if args.child == "separate":
        tokens, seconds = decode(engine, [None], args.tokens)
    else:
        specs = [AdapterSpec(n, f"file://{Path(args.adapter_root) / n}") for n in names]
        dtype = ADAPTER_DTYPES[args.adapter_dtype]
        manager = attach_adapters(engine, specs, capacity=8, dtype=dtype)
        loads = []
        for name in names:  # cold loads from the files
            started = time.perf_counter()
            manager.release(manager.acquire([name]))
            loads.append((time.perf_counter() - started) * 1000)
        out["cold_load_ms"] = loads
        out["adapter_bytes"] = manager.resident_bytes()
        streams: list[str | None] = list(names) if args.child == "adapters" else [None] * 8
        decode(engine, streams, 2)  # warm-up of the mixed path
        tokens, seconds = decode(engine, streams, args.tokens)
    out |= {"tokens": tokens, "seconds": seconds, "memory": memory_bytes(args.device)}
    out["weight_bytes"] = engine.info.weight_bytes
    return out


def run_child(args: argparse.Namespace, mode: str, root: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--adapter-root", str(root),
           "--model", args.model, "--precision", args.precision, "--device", args.device,
           "--tokens", str(args.tokens), "--adapter-dtype", args.adapter_dtype]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_adapters(args: argparse.Namespace, root: Path) -> None:
    from tierwise_runtime.adapters.synthetic import write_lora
    from tierwise_runtime.loader import load_engine

    config = hf_config(load_engine(args.model, "fp32"))
    for i in range(8):
        write_lora(root / f"tuned-{i}", config, targets=TARGETS, rank=args.rank, seed=i + 1,
                   std=0.02)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="builtin://smollm2-135m")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--adapter-dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="16 tokens per stream")
    parser.add_argument("--child", choices=["separate", "adapters", "base"], help=argparse.SUPPRESS)
    parser.add_argument("--adapter-root", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    if args.quick:
        args.tokens = 16
    with tempfile.TemporaryDirectory(prefix="tierwise-lora-") as tmp:
        root = Path(tmp)
        write_adapters(args, root)
        runs = {mode: run_child(args, mode, root) for mode in ("separate", "adapters", "base")}
    report(args, runs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


def report(args: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> None:
    key = "cuda_peak" if args.device.startswith("cuda") else "rss"
    one, multi = runs["separate"], runs["adapters"]
    mib = 2**20
    separate_mem = 8 * one["memory"][key]
    print(f"model {args.model} {args.precision} on {args.device}; 8 adapters rank "
          f"{args.rank} on all 7 projections ({args.adapter_dtype}); "
          f"{args.tokens} tokens per stream")  # fmt: skip
    print(f"memory ({key}):")
    print(f"  one replica, base only         {one['memory'][key] / mib:8.1f} MiB")
    print(f"  8 separate replicas            {separate_mem / mib:8.1f} MiB (8 x one)")
    print(f"  1 replica + 8 adapters         {multi['memory'][key] / mib:8.1f} MiB "
          f"(adapters {multi['adapter_bytes'] / mib:.1f} MiB)")  # fmt: skip
    shared = multi["memory"][key]
    print(f"  ratio 1 replica + 8 adapters / one replica: {shared / one['memory'][key]:.2f}x "
          f"(target < 1.5x); vs 8 separate: {shared / separate_mem:.2f}x")  # fmt: skip
    rate = {m: r["tokens"] / r["seconds"] for m, r in runs.items()}
    print("tokens/s at 8 concurrent streams:")
    print(f"  1 replica, 8 adapters, one batch   {rate['adapters']:8.1f}")
    print(f"  1 replica, base, one batch         {rate['base']:8.1f}  (LoRA overhead "
          f"{rate['base'] / rate['adapters'] - 1:+.0%})")  # fmt: skip
    print(f"  each separate replica, 1 stream    {rate['separate']:8.1f}  -> 8 replicas on 8x "
          f"the hardware: {8 * rate['separate']:.1f}; per replica-worth of hardware: "
          f"{rate['adapters'] / rate['separate']:.2f}x for the shared replica")  # fmt: skip
    loads = multi["cold_load_ms"]
    print(f"cold adapter load (files -> slot): median {statistics.median(loads):.1f} ms, "
          f"max {max(loads):.1f} ms over 8")  # fmt: skip


if __name__ == "__main__":
    main()
