"""Offload tier: weights written once at their precision, computed from the memory map
without anonymous copies, pages of finished blocks released while streaming."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tierwise_operator.api import TierKind
from tierwise_runtime.errors import LoadError
from tierwise_runtime.loader import load_engine

from .conftest import MINILM, embed_all

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh process so resident memory is this load's alone. Anonymous memory is
# read from /proc/self/smaps_rollup; "file" is the resident part of the mappings of the
# offload folder's files alone (from /proc/self/smaps), so pages of shared libraries the
# first forward touches do not count as weights.
_PROBE = """
import json, os, sys
from tierwise_runtime.loader import load_engine

def mem():
    fields = dict(l.split()[:2] for l in open('/proc/self/smaps_rollup') if l[0].isupper())
    weights, inside = 0, False
    for line in open('/proc/self/smaps'):
        head = line.split()
        if '-' in head[0] and len(head) >= 5:
            inside = len(head) >= 6 and head[5].startswith(root)
        elif inside and head[0] == 'Rss:':
            weights += int(head[1]) * 1024
    return {'anon': int(fields['Anonymous:']) * 1024, 'file': weights}

uri, precision, folder = sys.argv[1:4]
root = os.path.realpath(folder)
before = mem()
engine = load_engine(uri, precision, offload_dir=folder)
loaded = mem()
peak_file = [0]
inner = engine.model.runner
def runner(i, block, *args):
    out = inner(i, block, *args)
    peak_file[0] = max(peak_file[0], mem()['file'])
    return out
engine.model.runner = runner
for _ in range(2):
    engine.logits([list(range(5, 69))])
after = mem()
print(json.dumps({'before': before, 'loaded': loaded, 'after': after,
                  'peak_file': peak_file[0], 'weight_bytes': engine.info.weight_bytes}))
"""


def _probe(uri: str, precision: str, folder: Path) -> dict[str, object]:
    paths = [str(REPO / "operator"), str(REPO / "runtime"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, uri, precision, str(folder)],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _folder_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_offloaded_weights_cost_no_anonymous_memory(
    big_llama: Path, tmp_path: Path, precision: str
) -> None:
    uri = f"file://{big_llama}"
    for attempt in ("writes the folder", "maps the written folder"):
        m = _probe(uri, precision, tmp_path)
        file_bytes = _folder_bytes(tmp_path)
        assert file_bytes >= (200e6 if precision == "fp32" else 60e6)
        growth = m["loaded"]["anon"] - m["before"]["anon"]  # type: ignore[index]
        assert growth <= 0.05 * file_bytes, f"{attempt}: anonymous +{growth / 1e6:.1f} MB"
        # Using the model adds activations and the allocator's cache, never a weight copy.
        after = m["after"]["anon"] - m["before"]["anon"]  # type: ignore[index]
        assert after <= 32e6, f"{attempt}: anonymous +{after / 1e6:.1f} MB after two forwards"


@pytest.mark.slow
def test_streaming_keeps_file_backed_memory_to_a_few_blocks(
    big_llama: Path, tmp_path: Path
) -> None:
    m = _probe(f"file://{big_llama}", "fp32", tmp_path)
    file_bytes = _folder_bytes(tmp_path)
    block = 6_291_456 * 4 + 2 * 768 * 4  # one decoder block at fp32
    rest = 2 * 8000 * 768 * 4  # embedding and head
    peak = m["peak_file"] - m["before"]["file"]  # type: ignore[operator,index]
    assert peak <= 2 * block + rest + 16e6, f"file-backed peak +{peak / 1e6:.0f} MB"
    assert peak < 0.6 * file_bytes
    after = m["after"]["file"] - m["before"]["file"]  # type: ignore[index]
    assert after <= 16e6, f"file-backed +{after / 1e6:.0f} MB resident after the forward"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int4"])
def test_offloaded_decoder_computes_what_the_resident_one_does(
    small_llama: Path, tmp_path: Path, precision: str
) -> None:
    uri = f"file://{small_llama}"
    # Offload serves round-to-nearest int4 (it never holds the float model to calibrate).
    codes = {"calibration": "rtn"} if precision == "int4" else {}
    resident = load_engine(uri, precision, **codes)
    offloaded = load_engine(uri, precision, offload_dir=tmp_path)
    assert offloaded.info.tier is TierKind.OFFLOAD and resident.info.tier is TierKind.CPU
    assert offloaded.info.weight_bytes == resident.info.weight_bytes
    ids = [list(range(3, 40)), list(range(50, 60))]
    torch.testing.assert_close(
        offloaded.logits(ids),  # type: ignore[union-attr]
        resident.logits(ids),  # type: ignore[union-attr]
        atol=1e-5,
        rtol=1e-5,
    )


def test_offloaded_encoder_computes_what_the_resident_one_does(
    tmp_path: Path, sentences: list[str], minilm_fp32_embeddings: torch.Tensor
) -> None:
    engine = load_engine(MINILM, "fp32", offload_dir=tmp_path)
    torch.testing.assert_close(embed_all(engine, sentences), minilm_fp32_embeddings)


def test_weights_are_written_once_per_precision(small_llama: Path, tmp_path: Path) -> None:
    uri = f"file://{small_llama}"
    load_engine(uri, "int8", offload_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    stamps = {f: f.stat().st_mtime_ns for f in folder.iterdir()}
    load_engine(uri, "int8", offload_dir=tmp_path)
    assert {f: f.stat().st_mtime_ns for f in folder.iterdir()} == stamps
    load_engine(uri, "int4", offload_dir=tmp_path)
    assert sorted(p.name.split("-", 1)[1] for p in tmp_path.iterdir()) == [
        "int4-g128-cpu",
        "int8-cpu",
    ]


def test_an_unfinished_folder_is_rewritten(small_llama: Path, tmp_path: Path) -> None:
    uri = f"file://{small_llama}"
    load_engine(uri, "fp32", offload_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    (folder / "manifest.json").unlink()
    (folder / "layers.0.safetensors").write_bytes(b"truncated")
    engine = load_engine(uri, "fp32", offload_dir=tmp_path)
    assert engine.logits([[1, 2, 3]]).isfinite().all()  # type: ignore[union-attr]


def test_an_offload_dir_that_cannot_be_written_is_a_load_error(
    small_llama: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(LoadError, match="cannot write offload folder"):
        load_engine(f"file://{small_llama}", "fp32", offload_dir=blocker / "sub")
