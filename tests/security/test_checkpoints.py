"""Malformed checkpoints (truncated files, lying headers, absurd configs) fail fast, with the
runtime's own load error naming the field, and without allocating what they declare."""

from __future__ import annotations

import json
import os
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from tierwise_runtime.checkpoint import read_checkpoint
from tierwise_runtime.errors import CheckpointError, LoadError, ModelSourceError
from tierwise_runtime.loader import load_engine
from tierwise_runtime.sources import MODEL_ROOT_ENV, resolve_source
from tierwise_runtime.synthetic import write_llama, write_word_tokenizer

#: A failure is fast and small: this long and this many traced bytes at most.
FAST_S = 5.0
SMALL_BYTES = 64 * 2**20
VOCAB, DIM, LAYERS = 32, 16, 2


@pytest.fixture
def fails_fast() -> Iterator[Callable[[Callable[[], Any], str], CheckpointError]]:
    """Runs a load that must fail with a LoadError matching `field`, quickly and small."""

    def check(load: Callable[[], Any], field: str) -> CheckpointError:
        tracemalloc.start()
        started = time.perf_counter()
        try:
            with pytest.raises(LoadError) as caught:
                load()
            took = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert field in str(caught.value), str(caught.value)
        assert took < FAST_S, f"{took:.1f} s"
        assert peak < SMALL_BYTES, f"{peak / 2**20:.0f} MiB"
        return caught.value  # type: ignore[return-value]

    return check


def _write_gguf(path: Path, **meta: Any) -> Path:
    """A tiny valid llama GGUF (a tokenizer.json beside it); `meta` overrides llama.* keys."""
    writer = gguf.GGUFWriter(str(path), "llama")
    settings = {"block_count": LAYERS, "embedding_length": DIM, "attention.head_count": 2,
                "attention.head_count_kv": 1, "feed_forward_length": 32,
                "context_length": 64} | meta  # fmt: skip
    for key, value in settings.items():
        name = f"llama.{key}"
        if isinstance(value, str):
            writer.add_string(name, value)
        else:
            writer.add_uint32(name, value)
    writer.add_token_list([f"w{i}" for i in range(VOCAB)])
    rng = np.random.default_rng(0)

    def add(name: str, *shape: int) -> None:
        writer.add_tensor(name, rng.standard_normal(shape).astype(np.float32))

    add("token_embd.weight", VOCAB, DIM)
    add("output_norm.weight", DIM)
    add("output.weight", VOCAB, DIM)
    for i in range(LAYERS):
        for part, shape in [("attn_q", (DIM, DIM)), ("attn_k", (8, DIM)), ("attn_v", (8, DIM)),
                            ("attn_output", (DIM, DIM)), ("ffn_gate", (32, DIM)),
                            ("ffn_up", (32, DIM)), ("ffn_down", (DIM, 32)),
                            ("attn_norm", (DIM,)), ("ffn_norm", (DIM,))]:  # fmt: skip
            add(f"blk.{i}.{part}.weight", *shape)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    write_word_tokenizer(path.parent / "tokenizer.json", VOCAB)
    return path


def _header(tensors: int, entries: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, entries)


def _key(name: str) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode()


def test_the_tiny_gguf_itself_loads(tmp_path: Path) -> None:
    ckpt = read_checkpoint(_write_gguf(tmp_path / "m.gguf"))
    assert ckpt.config.n_layers == LAYERS  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        # An array of 2^40 integers, in a file of a few dozen bytes.
        (_header(0, 1) + _key("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2**40),
         "tokenizer.ggml.scores"),
        # An array of 2^40 strings.
        (_header(0, 1) + _key("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**40),
         "tokenizer.ggml.tokens"),
        # A string of 2^62 bytes.
        (_header(0, 1) + _key("general.name") + struct.pack("<IQ", 8, 2**62), "general.name"),
        # A key of 2^60 bytes.
        (_header(0, 1) + struct.pack("<Q", 2**60) + bytes(32), "metadata entry 0"),
        (_header(0, 2**60), "header.metadata_kv_count"),
        (_header(2**50, 0), "header.tensor_count"),
        (b"GGUF" + struct.pack("<I", 7) + bytes(16), "header.version"),
        (b"GGUF\x03\x00", "header.version"),
        (b"NOPE" + bytes(20), "magic"),
        (b"", "cannot read GGUF"),
        # A tensor of 2^40 elements stored nowhere.
        (_header(1, 0) + _key("token_embd.weight") + struct.pack("<IQQIQ", 2, 2**20, 2**20, 0, 0),
         "tensor token_embd.weight ends at byte"),
        (_header(1, 0) + _key("x") + struct.pack("<IQ", 9, 1) + bytes(32),
         "tensor x declares 9 dimensions"),
    ],
)  # fmt: skip
def test_a_gguf_with_lying_sizes_fails_fast_naming_the_field(
    tmp_path: Path, fails_fast: Any, raw: bytes, field: str
) -> None:
    path = tmp_path / "lying.gguf"
    path.write_bytes(raw)
    fails_fast(lambda: read_checkpoint(path), field)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_truncated_gguf_fails_fast(tmp_path: Path, fails_fast: Any, keep: float) -> None:
    path = _write_gguf(tmp_path / "m.gguf")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    fails_fast(lambda: read_checkpoint(path), "GGUF m.gguf")


@pytest.mark.parametrize(
    ("meta", "field"),
    [({"block_count": 10**6}, "llama.block_count"),
     ({"block_count": 7}, "llama.block_count declares 7 layers"),
     ({"attention.head_count": 0}, "llama.attention.head_count"),
     ({"attention.head_count_kv": 0}, "llama.attention.head_count_kv"),
     ({"attention.head_count_kv": 3}, "not a multiple of 3"),
     ({"embedding_length": "wide"}, "llama.embedding_length must be an integer"),
     ({"context_length": 2**31}, "llama.context_length")],
)  # fmt: skip
def test_a_gguf_with_an_absurd_config_fails_fast_naming_the_field(
    tmp_path: Path, fails_fast: Any, meta: dict[str, Any], field: str
) -> None:
    path = _write_gguf(tmp_path / "m.gguf", **meta)
    fails_fast(lambda: read_checkpoint(path), field)


def test_a_load_through_the_loader_fails_with_its_load_error(
    tmp_path: Path, fails_fast: Any
) -> None:
    path = _write_gguf(tmp_path / "m.gguf", block_count=10**6)
    error = fails_fast(lambda: load_engine(f"file://{path}", "fp32"), "llama.block_count")
    assert isinstance(error, CheckpointError)


@pytest.fixture(scope="module")
def hf_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama(tmp_path_factory.mktemp("hf"), vocab=64, dim=32, layers=2, heads=4,
                       kv_heads=2, intermediate=64, context=64)  # fmt: skip


def _with_config(src: Path, dest: Path, change: Callable[[dict[str, Any]], Any]) -> Path:
    dest.mkdir()
    for file in src.iterdir():
        os.symlink(file, dest / file.name)
    (dest / "config.json").unlink()
    config = json.loads((src / "config.json").read_text())
    (dest / "config.json").write_text(json.dumps(change(config)))
    return dest


@pytest.mark.parametrize(
    ("change", "field"),
    [(lambda c: c | {"num_hidden_layers": 10**6}, "num_hidden_layers"),
     (lambda c: c | {"num_hidden_layers": 5}, "num_hidden_layers declares 5 layers"),
     (lambda c: c | {"hidden_size": "big"}, "hidden_size must be an integer"),
     (lambda c: c | {"hidden_size": 2**40}, "hidden_size"),
     (lambda c: c | {"num_attention_heads": 0}, "num_attention_heads"),
     (lambda c: c | {"num_key_value_heads": 0}, "num_key_value_heads"),
     (lambda c: c | {"vocab_size": None}, "vocab_size"),
     (lambda c: {k: v for k, v in c.items() if k != "intermediate_size"}, "intermediate_size"),
     (lambda c: c | {"rms_norm_eps": "tiny"}, "rms_norm_eps"),
     (lambda c: c | {"eos_token_id": ["x"]}, "eos_token_id"),
     (lambda c: [c], "is not a JSON object")],
)  # fmt: skip
def test_a_hugging_face_folder_with_an_absurd_config_fails_fast_naming_the_field(
    hf_llama: Path, tmp_path: Path, fails_fast: Any, change: Any, field: str
) -> None:
    folder = _with_config(hf_llama, tmp_path / "m", change)
    fails_fast(lambda: read_checkpoint(folder), field)


@pytest.mark.parametrize("damage", ["truncate", "lying_header"])
def test_a_damaged_safetensors_shard_fails_fast(
    hf_llama: Path, tmp_path: Path, fails_fast: Any, damage: str
) -> None:
    folder = _with_config(hf_llama, tmp_path / "m", lambda c: c)
    shard = sorted(folder.glob("*.safetensors"))[0]
    data = shard.read_bytes()
    shard.unlink()
    if damage == "truncate":
        shard.write_bytes(data[: len(data) // 2])
    else:  # a header that declares 2^50 bytes
        shard.write_bytes(struct.pack("<Q", 2**50) + data[8:])
    fails_fast(lambda: read_checkpoint(folder), shard.name)


@pytest.mark.parametrize(
    "uri",
    ["pvc://..//x", "pvc://../etc", "pvc://claim/../../etc", "pvc://claim/a/../../x",
     "pvc://./x", "pvc://Bad_Claim/x", "pvc://claim/%2e%2e/%2e%2e/x"],
)  # fmt: skip
def test_a_pvc_uri_never_leaves_the_model_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    root = tmp_path / "models"
    (root / "claim" / "a").mkdir(parents=True)
    (tmp_path / "x").mkdir()
    monkeypatch.setenv(MODEL_ROOT_ENV, str(root))
    with pytest.raises(ModelSourceError, match="claim"):
        resolve_source(uri)


def test_a_symlink_in_a_claim_does_not_lead_out_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "models"
    (root / "claim").mkdir(parents=True)
    (root / "claim" / "out").symlink_to(tmp_path)
    monkeypatch.setenv(MODEL_ROOT_ENV, str(root))
    with pytest.raises(ModelSourceError, match="escapes its claim"):
        resolve_source("pvc://claim/out")
