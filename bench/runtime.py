"""all-MiniLM-L6-v2 on CPU: tierwise at each precision against sentence-transformers and
onnxruntime (fp32 and its dynamic int8), side by side, same threads, same texts.

    python bench/runtime.py [--quick] [--threads N] [--json results.json]

Every contender is a process of its own (bench/runtime_contenders.py), so its peak RSS is
its own. They load one after another, then their timing rounds interleave: round r times
each contender in turn, so a noisy neighbour slows them all alike. Prints throughput and
p50/p99 latency at batch 1 and 32 (throughput = batch size / median batch latency),
weight bytes, peak RSS and mean cosine to sentence-transformers fp32, then the issue's
targets as ratios against it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKER = BENCH / "runtime_contenders.py"

CONTENDERS = {
    "st-fp32": "sentence-transformers fp32",
    "ort-fp32": "onnxruntime fp32",
    "ort-int8": "onnxruntime dynamic int8",
    "tw-fp32": "tierwise fp32",
    "tw-bf16": "tierwise bf16",
    "tw-fp16": "tierwise fp16",
    "tw-int8": "tierwise int8",
    "tw-int4-g128": "tierwise int4 g128 gptq",
    "tw-int4-g128-rtn": "tierwise int4 g128 rtn",
    "tw-int4-g32": "tierwise int4 g32 gptq",
}
QUICK_SKIP = {"tw-fp16", "tw-int4-g32"}
SLOW = {"tw-fp16"}  # ~4x slower than fp32 on CPUs without fp16 GEMMs: fewer rounds
BASELINE = "st-fp32"

TARGETS = [
    ("tw-fp32", "throughput", 0.9),
    ("tw-bf16", "throughput", 2.5),
    ("tw-int8", "throughput", 1.2),
    ("tw-int4-g128", "throughput", 1.3),
    ("tw-int8", "layer_bytes", 0.27),
    ("tw-int4-g128", "layer_bytes", 0.15),
    ("tw-int8", "cosine", 0.999),
    ("tw-int4-g128", "cosine", 0.98),
    ("tw-int4-g128-rtn", "cosine", 0.94),
    ("tw-int4-g32", "cosine", 0.97),
]


class Contender:
    """One worker process, driven over its stdin/stdout."""

    def __init__(self, name: str, args: argparse.Namespace, onnx_dir: Path) -> None:
        self.name = name
        cmd = [sys.executable, str(WORKER), name, "--threads", str(args.threads)]
        self.proc = subprocess.Popen(
            [*cmd, "--onnx-dir", str(onnx_dir)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(args),
        )  # fmt: skip
        self.info = self._read()
        self.times: dict[int, list[float]] = {1: [], 32: []}

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])  # type: ignore[no-any-return]
        err = self.proc.stderr.read() if self.proc.stderr else ""
        raise RuntimeError((err.strip().splitlines() or ["worker exited"])[-1])

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def time(self, batch: int, count: int, offset: int, keep: bool = True) -> None:
        times = self.ask(op="time", batch=batch, count=count, offset=offset)["times"]
        if keep:
            self.times[batch].extend(times)

    def finish(self) -> dict[str, Any]:
        result = {**self.info, "embeddings": self.ask(op="embed")["embeddings"]}
        result.update(self.ask(op="exit"))
        self.proc.wait()
        for size, times in self.times.items():
            result[f"batch{size}"] = _stats(times, size)
        return result


def _env(args: argparse.Namespace) -> dict[str, str]:
    paths = [str(REPO / "operator"), str(REPO / "runtime"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "OMP_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
    }


def _stats(times: list[float], size: int) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": 1e3 * float(np.median(ordered)),
        "p99_ms": 1e3 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        # From the median, not the mean: on a shared machine a few stalled batches would
        # otherwise decide the ratios. On a quiet machine the two agree.
        "texts_per_s": size / float(np.median(ordered)),
        "mean_texts_per_s": size * len(ordered) / sum(ordered),
        "samples": len(ordered),
    }


def run(args: argparse.Namespace, onnx_dir: Path) -> dict[str, dict[str, Any]]:
    names = [n for n in CONTENDERS if not (args.quick and n in QUICK_SKIP)]
    live: dict[str, Contender] = {}
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"  loading {CONTENDERS[name]} ...", file=sys.stderr, flush=True)
        try:
            live[name] = Contender(name, args, onnx_dir)
        except (RuntimeError, OSError) as exc:
            results[name] = {"error": str(exc)}
    rounds, per_round = (2, {1: 10, 32: 4}) if args.quick else (10, {1: 20, 32: 6})
    for c in live.values():  # warm-up, discarded
        c.time(32, 2, 0, keep=False)
        c.time(1, 5, 0, keep=False)
    for r in range(rounds):
        print(f"  round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        for c in live.values():
            if c.name in SLOW and r % 4:
                continue
            for size, count in per_round.items():
                c.time(size, count, offset=r * count * size)
    for name, c in live.items():
        results[name] = c.finish()
    return {n: results[n] for n in names}


def _load(avg: tuple[float, float, float]) -> str:
    return "/".join(f"{a:.1f}" for a in avg)


def _table(results: dict[str, dict[str, Any]]) -> None:
    base = results[BASELINE]["batch32"]["texts_per_s"]
    columns = [("weights MB", 10), ("peak RSS MB", 11), ("b1 p50", 7), ("b1 p99", 7)]
    columns += [("b1 /s", 7), ("b32 p50", 8), ("b32 p99", 8), ("b32 /s", 7), ("vs ST", 6)]
    head = f"{'contender':28} " + " ".join(f"{c:>{w}}" for c, w in columns) + f" {'cosine':>7}"
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        if "error" in r:
            print(f"{CONTENDERS[name]:28} failed: {r['error']}")
            continue
        b1, b32 = r["batch1"], r["batch32"]
        print(
            f"{CONTENDERS[name]:28} {r['weight_bytes'] / 1e6:10.1f} {r['peak_rss'] / 1e6:11.0f} "
            f"{b1['p50_ms']:7.2f} {b1['p99_ms']:7.2f} {b1['texts_per_s']:7.0f} "
            f"{b32['p50_ms']:8.1f} {b32['p99_ms']:8.1f} {b32['texts_per_s']:7.0f} "
            f"{b32['texts_per_s'] / base:5.2f}x {r['cosine']:7.4f}"
        )


def _target(r: dict[str, Any], kind: str, base: float) -> tuple[str, float, str]:
    if kind == "throughput":
        return "batch-32 throughput vs ST fp32", r["batch32"]["texts_per_s"] / base, "x"
    if kind == "layer_bytes":
        return "quantized-layer bytes vs their fp32", r["quantized_layer_ratio"], "x"
    return "mean cosine vs fp32", r["cosine"], ""


def _targets(results: dict[str, dict[str, Any]]) -> None:
    base = results[BASELINE]["batch32"]["texts_per_s"]
    print(f"\n{'target':58} {'measured':>9} {'goal':>8}  met")
    for name, kind, goal in TARGETS:
        r = results.get(name, {})
        if not r or "error" in r:
            continue
        label, value, unit = _target(r, kind, base)
        ok = value <= goal if kind == "layer_bytes" else value >= goal
        sign = "<=" if kind == "layer_bytes" else ">="
        shown = f"{value:.3f}{unit}" if unit else f"{value:.4f}"
        print(
            f"{CONTENDERS[name] + ' ' + label:58} {shown:>9} "
            f"{sign + str(goal) + unit:>8}  {'yes' if ok else 'NO'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer contenders")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = Path(tmp)
        export = subprocess.run(
            [sys.executable, str(WORKER), "export", "--onnx-dir", tmp],
            capture_output=True, text=True, env=_env(args), check=False,
        )  # fmt: skip
        if export.returncode != 0:
            print(f"ONNX export failed: {export.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        load_before = os.getloadavg()
        results = run(args, onnx_dir)
        load_after = os.getloadavg()
    reference = results[BASELINE]["embeddings"]
    for r in results.values():
        if "embeddings" in r:
            x, y = np.asarray(r.pop("embeddings")), np.asarray(reference)
            r["cosine"] = float((x * y).sum(1).mean())
    samples = results[BASELINE]["batch1"]["samples"], results[BASELINE]["batch32"]["samples"]
    print(f"all-MiniLM-L6-v2, CPU, {args.threads} threads; timed batches: "
          f"{samples[0]} of 1, {samples[1]} of 32, interleaved in rounds")  # fmt: skip
    print(f"load average (1/5/15 min) before timing {_load(load_before)}, after {_load(load_after)}"
          f" on {os.cpu_count()} CPUs: a shared machine slows every contender alike")  # fmt: skip
    _table(results)
    _targets(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
