"""all-MiniLM-L6-v2 on CPU: tierwise at each precision against sentence-transformers and
onnxruntime (fp32 and its dynamic int8), side by side, same threads, same texts.

    python bench/runtime.py [--quick] [--threads N] [--json results.json]

Each contender runs in its own process, so its peak RSS is its own. Prints throughput and
p50/p99 latency at batch 1 and 32, weight bytes, peak RSS and mean cosine to
sentence-transformers, then the issue's targets as ratios against sentence-transformers fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TEXTS = REPO / "tests" / "runtime" / "data" / "sentences.txt"
MODEL = "builtin://all-minilm-l6-v2"

CONTENDERS = {
    "st-fp32": "sentence-transformers fp32",
    "ort-fp32": "onnxruntime fp32",
    "ort-int8": "onnxruntime dynamic int8",
    "tw-fp32": "tierwise fp32",
    "tw-bf16": "tierwise bf16",
    "tw-fp16": "tierwise fp16",
    "tw-int8": "tierwise int8",
    "tw-int4-g128": "tierwise int4 g128",
    "tw-int4-g32": "tierwise int4 g32",
}
QUICK_SKIP = {"tw-fp16", "tw-int4-g32"}
BASELINE = "st-fp32"

Embed = Callable[[Sequence[str]], np.ndarray]


# ---- workers: one contender per process -------------------------------------------------


def _tierwise(name: str) -> tuple[Embed, dict[str, Any]]:
    import torch

    from tierwise_runtime.loader import load_engine
    from tierwise_runtime.quantize import Int4WeightOnlyLinear, Int8WeightOnlyLinear

    parts = name.split("-")  # tw-int4-g32
    group = int(parts[2][1:]) if len(parts) > 2 else None
    engine = load_engine(MODEL, parts[1], group_size=group)
    held = fp32 = 0
    for m in engine.model.modules():  # type: ignore[union-attr]
        if isinstance(m, Int8WeightOnlyLinear | Int4WeightOnlyLinear):
            held += sum(t.numel() * t.element_size() for t in m.state_dict().values())
            fp32 += 4 * m.out_features * (m.in_features + int(m.bias is not None))
    extra = {
        "weight_bytes": engine.info.weight_bytes,
        "quantized_layer_ratio": held / fp32 if fp32 else None,
    }

    def embed(texts: Sequence[str]) -> np.ndarray:
        with torch.inference_mode():
            return engine.embed(texts).numpy()  # type: ignore[union-attr,no-any-return]

    return embed, extra


def _sentence_transformers(name: str) -> tuple[Embed, dict[str, Any]]:
    from sentence_transformers import SentenceTransformer

    from tierwise_runtime.sources import resolve_source

    model = SentenceTransformer(str(resolve_source(MODEL)), device="cpu")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())

    def embed(texts: Sequence[str]) -> np.ndarray:
        return model.encode(list(texts), batch_size=32, convert_to_numpy=True)  # type: ignore[no-any-return]

    return embed, {"weight_bytes": weights}


def _onnxruntime(name: str, onnx_dir: Path, threads: int) -> tuple[Embed, dict[str, Any]]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from tierwise_runtime.sources import resolve_source

    path = onnx_dir / f"{name}.onnx"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(resolve_source(MODEL) / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding()

    def embed(texts: Sequence[str]) -> np.ndarray:
        enc = tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)  # type: ignore[no-any-return]

    return embed, {"weight_bytes": path.stat().st_size}


def _time(embed: Embed, batches: list[list[str]], warmup: int) -> dict[str, float]:
    for batch in batches[:warmup]:
        embed(batch)
    times = []
    for batch in batches:
        start = time.perf_counter()
        embed(batch)
        times.append(time.perf_counter() - start)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return {
        "p50_ms": 1e3 * statistics.median(times),
        "p99_ms": 1e3 * p99,
        "texts_per_s": len(batches[0]) * len(times) / sum(times),
        "samples": len(times),
    }


def worker(
    name: str, texts: list[str], reps: dict[int, int], onnx_dir: Path, threads: int
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    if name.startswith("tw-"):
        embed, extra = _tierwise(name)
    elif name.startswith("st-"):
        embed, extra = _sentence_transformers(name)
    else:
        embed, extra = _onnxruntime(name, onnx_dir, threads)
    result = {**extra, "load_s": time.perf_counter() - start}
    for size, count in reps.items():
        pool = (texts * (1 + size * count // len(texts)))[: size * count]
        batches = [pool[i : i + size] for i in range(0, len(pool), size)]
        result[f"batch{size}"] = _time(embed, batches, warmup=min(5, count))
    result["embeddings"] = np.concatenate(
        [embed(texts[i : i + 32]) for i in range(0, len(texts), 32)]
    ).tolist()
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


def export_onnx(onnx_dir: Path) -> None:
    """The Hugging Face model (what sentence-transformers runs) exported with torch's dynamo
    exporter; dynamic int8 is onnxruntime's quantize_dynamic of it."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import BertModel

    from tierwise_runtime.sources import resolve_source

    bert = BertModel.from_pretrained(str(resolve_source(MODEL))).eval()

    class Hidden(torch.nn.Module):
        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return bert(input_ids=ids, attention_mask=mask).last_hidden_state  # type: ignore[no-any-return]

    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2023, 102, 0, 0, 0]])
    b, s = torch.export.Dim("batch"), torch.export.Dim("seq")
    torch.onnx.export(
        Hidden(), (ids, (ids != 0).long()), str(onnx_dir / "ort-fp32.onnx"), dynamo=True,
        input_names=["input_ids", "attention_mask"], output_names=["hidden"],
        dynamic_shapes={"ids": {0: b, 1: s}, "mask": {0: b, 1: s}}, external_data=False,
    )  # fmt: skip
    quantize_dynamic(
        str(onnx_dir / "ort-fp32.onnx"),
        str(onnx_dir / "ort-int8.onnx"),
        weight_type=QuantType.QInt8,
    )


# ---- the parent: run every contender, print the tables ----------------------------------


def _run_worker(name: str, args: argparse.Namespace, onnx_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "operator"), str(REPO / "runtime"), env.get("PYTHONPATH", "")]
    )
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--threads",
        str(args.threads),
        "--onnx-dir",
        str(onnx_dir),
    ]
    if args.quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _cosine(a: list[list[float]], b: list[list[float]]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(((x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)).mean())


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


TARGETS = [
    ("tw-fp32", "throughput", 0.9),
    ("tw-bf16", "throughput", 2.5),
    ("tw-int8", "throughput", 1.2),
    ("tw-int4-g128", "throughput", 1.3),
    ("tw-int8", "layer_bytes", 0.27),
    ("tw-int4-g128", "layer_bytes", 0.15),
    ("tw-int8", "cosine", 0.999),
    ("tw-int4-g128", "cosine", 0.94),
    ("tw-int4-g32", "cosine", 0.97),
]


def _targets(results: dict[str, dict[str, Any]]) -> None:
    base = results[BASELINE]["batch32"]["texts_per_s"]
    print(f"\n{'target':58} {'measured':>9} {'goal':>8}  met")
    for name, kind, goal in TARGETS:
        r = results.get(name, {})
        if "error" in r or not r:
            continue
        if kind == "throughput":
            value, label, ok = (
                r["batch32"]["texts_per_s"] / base,
                f"{CONTENDERS[name]} batch-32 throughput vs ST fp32",
                None,
            )
            text, goal_text = f"{value:.2f}x", f">={goal}x"
        elif kind == "layer_bytes":
            value, label = (
                r["quantized_layer_ratio"],
                f"{CONTENDERS[name]} quantized-layer bytes vs fp32",
            )
            text, goal_text = f"{value:.3f}x", f"<={goal}x"
        else:
            value, label = r["cosine"], f"{CONTENDERS[name]} mean cosine vs fp32"
            text, goal_text = f"{value:.4f}", f">={goal}"
        ok = value <= goal if kind == "layer_bytes" else value >= goal
        print(f"{label:58} {text:>9} {goal_text:>8}  {'yes' if ok else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, fewer contenders")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--onnx-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    texts = [t for t in TEXTS.read_text().splitlines() if t.strip()]
    reps = {1: 20, 32: 8} if args.quick else {1: 200, 32: 60}
    if args.worker == "export":
        export_onnx(args.onnx_dir)
        print("{}")
        return
    if args.worker:
        print(json.dumps(worker(args.worker, texts, reps, args.onnx_dir, args.threads)))
        return
    print(f"all-MiniLM-L6-v2, CPU, {args.threads} threads, {len(texts)} texts; "
          f"repetitions: batch 1 x{reps[1]}, batch 32 x{reps[32]}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = Path(tmp)
        exported = _run_worker("export", args, onnx_dir)
        names = [n for n in CONTENDERS if not (args.quick and n in QUICK_SKIP)]
        results = {}
        for name in names:
            if name.startswith("ort-") and "error" in exported:
                results[name] = {"error": f"ONNX export failed: {exported['error']}"}
                continue
            print(f"  running {CONTENDERS[name]} ...", file=sys.stderr, flush=True)
            results[name] = _run_worker(name, args, onnx_dir)
    reference = results[BASELINE]["embeddings"]
    for r in results.values():
        if "embeddings" in r:
            r["cosine"] = _cosine(r.pop("embeddings"), reference)
    _table(results)
    _targets(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
