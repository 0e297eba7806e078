"""GPU smoke run of the operator-facing runtime: profile the gpu tier, then serve on CUDA.

    python3 scripts/device_smoke.py --out DIR [--device cuda]

Writes a synthetic ~120M-parameter Llama (no model files on the GPU machine),
runs `tierwise-runtime profile --device cuda` on it (what the operator's gpu
profile Job runs), then `tierwise-runtime serve --device cuda`, sends one
completion and reads /metrics. `--device cpu` exercises the same steps here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tierwise_runtime.synthetic import write_llama, write_word_tokenizer


def profile(model: Path, device: str, out: Path) -> dict[str, object]:
    started = time.perf_counter()
    small = device == "cpu"  # a smoke run of the same steps on a machine without a GPU
    cmd = [
        sys.executable,
        "-m",
        "tierwise_runtime.cli",
        "profile",
        "--model",
        f"file://{model}",
        "--device",
        device,
        "--eval-limit",
        "32",
        "--batch-sizes",
        "1,8" if small else "1,8,32",
        "--repeats",
        "5" if small else "20",
        "--warmup",
        "2",
        "--out",
        str(out / "profile-gpu.json"),
        "--termination-log",
        str(out / "profile-gpu.termination-log"),
    ]
    if small:
        cmd += ["--tiers", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    (out / "profile-gpu.stderr").write_text(done.stderr)
    return {"rc": done.returncode, "seconds": round(time.perf_counter() - started, 1)}


def _get(url: str, body: dict[str, object] | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.status, resp.read().decode()


def serve(model: Path, device: str, out: Path, port: int = 18080) -> dict[str, object]:
    log = (out / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tierwise_runtime.cli",
            "serve",
            "--model",
            f"file://{model}",
            "--name",
            "synth",
            "--device",
            device,
            "--precision",
            "bf16",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    result: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if _get(f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        started = time.perf_counter()
        status, text = _get(
            f"{base}/v1/completions",
            {"model": "synth", "prompt": "w5 w6 w7", "max_tokens": 16, "temperature": 0},
        )
        result["completion"] = {
            "status": status,
            "ms": round((time.perf_counter() - started) * 1e3, 1),
            "body": json.loads(text),
        }
        metrics = _get(f"{base}/metrics")[1]
        result["metrics"] = [
            line
            for line in metrics.splitlines()
            if line.startswith(
                (
                    "tierwise_runtime_gpu_memory_bytes",
                    "tierwise_runtime_info",
                    "tierwise_runtime_weight_bytes",
                )
            )
        ]
    finally:
        proc.terminate()
        result["exit_code"] = proc.wait(timeout=60)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = Path("/tmp/tierwise-synth-llama")
    if args.device == "cpu":
        write_llama(model, vocab=1024, dim=128, layers=2, heads=4, kv_heads=2, intermediate=256)
    else:
        write_llama(
            model,
            vocab=8192,
            dim=768,
            layers=12,
            heads=12,
            kv_heads=4,
            intermediate=2048,
            context=1024,
        )
    write_word_tokenizer(model / "tokenizer.json", 1024 if args.device == "cpu" else 8192)
    summary = {"profile": profile(model, args.device, args.out)}
    summary["serve"] = serve(model, args.device, args.out)
    (args.out / "device-smoke.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2)[:4000])
    completion: dict[str, object] = summary["serve"].get("completion", {})  # type: ignore[assignment]
    return 0 if summary["profile"]["rc"] == 0 and completion.get("status") == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
