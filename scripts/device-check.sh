#!/usr/bin/env bash
# One-shot check of the runtime's CUDA paths on a lent GPU machine (H100/H200 image:
# python3 = Python 3.12 with torch 2.11+cu130, pytest, transformers, tokenizers, safetensors;
# no internet, no torchao, no model weights). Runs the CUDA tests, then the CUDA benchmark
# on a synthetic ~1B-parameter Llama, then profiles the gpu tier and serves on CUDA
# (scripts/device_smoke.py), writing logs and results to $OUT. Under 8 minutes.
#
# The repository is copied there, not installed. Packages the image lacks travel as wheels
# in .whl/ (git-ignored, so name it in the device tool's `carry`), downloaded here with:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl pydantic==2.14.4 pydantic-core==2.50.5 \
#     annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 gguf==0.19.0
# (pydantic and its dependencies for the shared API types; gguf for the GGUF reader;
# typing-extensions because pydantic-core 2.50 needs a recent one. About 3 MB in all.)
#
# Run it from the repository root:  bash scripts/device-check.sh
set -uo pipefail

OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device-check.log") 2>&1
failed=()

step() { echo; echo "=== $* ($(date +%T))"; }

step "versions"
python3 - <<'PY' || exit 2
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda)
print("cuda available:", torch.cuda.is_available())
if not torch.cuda.is_available():
    raise SystemExit("torch sees no CUDA device: nothing to check here")
print("device:", torch.cuda.get_device_name(), "| capability", torch.cuda.get_device_capability())
PY
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv || true

step "install carried wheels into /tmp/site"
if ! ls .whl/*.whl >/dev/null 2>&1; then
  echo "no wheels in .whl/: carry .whl (see this script's header)"; exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || { echo "wheel install failed"; exit 2; }
export PYTHONPATH="$PWD/operator:$PWD/runtime:/tmp/site"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python3 - <<'PY' || { echo "imports failed"; exit 2; }
import importlib.metadata as md
for name in ("pydantic", "pydantic-core", "gguf", "tokenizers", "safetensors", "transformers", "pytest"):
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} MISSING")
import tierwise_runtime.loader  # noqa: F401  (fails loudly if a dependency is missing)
print("tierwise_runtime imports")
PY

step "CUDA tests"
timeout 120 python3 -m pytest -m cuda tests/runtime -q -rs \
  -p no:cacheprovider --junitxml="$OUT/cuda-tests.xml" || failed+=(cuda-tests)

step "CUDA benchmark"
timeout 170 python3 bench/runtime_cuda.py --out "$OUT" --budget-s 110 || failed+=(cuda-bench)

step "profile the gpu tier and serve on CUDA"
timeout 150 python3 scripts/device_smoke.py --out "$OUT" --device cuda || failed+=(smoke)

step "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"; exit 1
fi
echo "all device checks passed; results in $OUT"
