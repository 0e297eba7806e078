"""The contenders of bench/runtime.py, each served from its own process.

    python bench/runtime_contenders.py NAME --threads N --onnx-dir DIR
    python bench/runtime_contenders.py export --onnx-dir DIR

A contender loads, says `ready`, then answers one JSON command per stdin line
(`time`, `embed`, `exit`) with one `@@ `-prefixed JSON line, so the parent can
interleave the contenders' timing rounds and noise from a shared machine falls on
all of them alike. Peak RSS (ru_maxrss) is reported at exit: each process's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TEXTS = REPO / "tests" / "runtime" / "data" / "sentences.txt"
MODEL = "builtin://all-minilm-l6-v2"

Embed = Callable[[Sequence[str]], np.ndarray]


def tierwise(name: str) -> tuple[Embed, dict[str, Any]]:
    import torch

    from tierwise_runtime.loader import load_engine
    from tierwise_runtime.quantize import Int4WeightOnlyLinear, Int8WeightOnlyLinear

    parts = name.split("-")  # tw-int4-g32, tw-int4-g128-rtn
    group = int(parts[2][1:]) if len(parts) > 2 else None
    calibration = {"calibration": parts[3]} if len(parts) > 3 else {}
    engine = load_engine(MODEL, parts[1], group_size=group, **calibration)
    held = fp32 = 0
    for m in engine.model.modules():  # type: ignore[union-attr]
        if isinstance(m, Int8WeightOnlyLinear | Int4WeightOnlyLinear):
            held += sum(t.numel() * t.element_size() for t in m.state_dict().values())
            fp32 += 4 * m.out_features * (m.in_features + int(m.bias is not None))
    ratio = held / fp32 if fp32 else None

    def embed(texts: Sequence[str]) -> np.ndarray:
        with torch.inference_mode():
            return engine.embed(texts).numpy()  # type: ignore[union-attr,no-any-return]

    return embed, {"weight_bytes": engine.info.weight_bytes, "quantized_layer_ratio": ratio}


def sentence_transformers(name: str) -> tuple[Embed, dict[str, Any]]:
    from sentence_transformers import SentenceTransformer

    from tierwise_runtime.sources import resolve_source

    model = SentenceTransformer(str(resolve_source(MODEL)), device="cpu")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())

    def embed(texts: Sequence[str]) -> np.ndarray:
        return model.encode(list(texts), batch_size=32, convert_to_numpy=True)  # type: ignore[no-any-return]

    return embed, {"weight_bytes": weights}


def onnxruntime(name: str, onnx_dir: Path, threads: int) -> tuple[Embed, dict[str, Any]]:
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


def export_onnx(onnx_dir: Path) -> None:
    """The Hugging Face model (what sentence-transformers runs) through torch's dynamo ONNX
    exporter; the dynamic int8 model is onnxruntime's quantize_dynamic of it."""
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
    fp32, int8 = str(onnx_dir / "ort-fp32.onnx"), str(onnx_dir / "ort-int8.onnx")
    torch.onnx.export(
        Hidden(), (ids, (ids != 0).long()), fp32, dynamo=True, external_data=False,
        input_names=["input_ids", "attention_mask"], output_names=["hidden"],
        dynamic_shapes={"ids": {0: b, 1: s}, "mask": {0: b, 1: s}},
    )  # fmt: skip
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)


def _load(name: str, onnx_dir: Path, threads: int) -> tuple[Embed, dict[str, Any]]:
    if name.startswith("tw-"):
        return tierwise(name)
    if name.startswith("st-"):
        return sentence_transformers(name)
    return onnxruntime(name, onnx_dir, threads)


def _reply(payload: dict[str, Any]) -> None:
    print("@@ " + json.dumps(payload), flush=True)


def serve(name: str, onnx_dir: Path, threads: int) -> None:
    if not name.startswith("ort-"):  # onnxruntime's process never imports torch
        import torch

        torch.set_num_threads(threads)
    texts = [t for t in TEXTS.read_text().splitlines() if t.strip()]
    start = time.perf_counter()
    embed, info = _load(name, onnx_dir, threads)
    _reply({"ready": True, "load_s": time.perf_counter() - start, **info})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "time":
            size, first = cmd["batch"], cmd["offset"]
            times = []
            for i in range(cmd["count"]):
                batch = [texts[(first + i * size + j) % len(texts)] for j in range(size)]
                t = time.perf_counter()
                embed(batch)
                times.append(time.perf_counter() - t)
            _reply({"times": times})
        elif cmd["op"] == "embed":
            vectors = np.concatenate([embed(texts[i : i + 32]) for i in range(0, len(texts), 32)])
            _reply({"embeddings": vectors.tolist()})
        else:
            _reply({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--onnx-dir", type=Path, required=True)
    args = parser.parse_args()
    if args.name == "export":
        export_onnx(args.onnx_dir)
    else:
        serve(args.name, args.onnx_dir, args.threads)


if __name__ == "__main__":
    main()
