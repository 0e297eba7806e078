"""Bad adapters are named and refused while the base and the others serve; a bounded LRU set
loads the rest on demand; the adapter list changes without reloading the base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tierwise_runtime.adapters.attach import attach_adapters
from tierwise_runtime.adapters.errors import AdapterError, AdapterSlotsBusy, UnknownAdapter
from tierwise_runtime.adapters.manager import AdapterManager, AdapterSpec
from tierwise_runtime.adapters.synthetic import write_lora
from tierwise_runtime.engines import DecoderEngine
from tierwise_runtime.loader import load_engine
from tierwise_runtime.synthetic import write_bert

from .conftest import LlamaWithAdapters

IDS = [[3, 4, 5, 6, 7]]


@pytest.fixture
def engine(llama_adapters: LlamaWithAdapters) -> DecoderEngine:
    loaded = load_engine(f"file://{llama_adapters.folder}", "fp32")
    assert isinstance(loaded, DecoderEngine)
    return loaded


def _manager(engine: DecoderEngine) -> AdapterManager:
    assert engine.adapters is not None
    return engine.adapters


def _copy(llama: LlamaWithAdapters, name: str, to: Path) -> Path:
    return Path(shutil.copytree(llama.folder.parent / name, to))


def _bad_adapters(llama: LlamaWithAdapters, root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (folder, what its error must say)."""
    missing = _copy(llama, "attn-qv", root / "missing")
    (missing / "adapter_model.safetensors").unlink()
    rank = _copy(llama, "attn-qv", root / "rank")
    config = json.loads((rank / "adapter_config.json").read_text())
    (rank / "adapter_config.json").write_text(json.dumps(config | {"r": 16}))
    foreign = _copy(llama, "attn-qv", root / "foreign")
    tensors = load_file(foreign / "adapter_model.safetensors")
    renamed = {k.replace("q_proj", "c_attn"): v for k, v in tensors.items()}
    save_file(renamed, str(foreign / "adapter_model.safetensors"))
    wide = _copy(llama, "attn-qv", root / "wide")
    tensors = load_file(wide / "adapter_model.safetensors")
    key = next(k for k in tensors if k.endswith("lora_A.weight"))
    tensors[key] = torch.zeros(4, 96)
    save_file(tensors, str(wide / "adapter_model.safetensors"))
    bert = root / "bert-base"
    write_bert(bert)
    bert_config = json.loads((bert / "config.json").read_text())
    for_bert = write_lora(root / "for-bert", bert_config, targets=("query", "value"))
    return {
        "missing-weights": (missing, "adapter_model.safetensors does not exist"),
        "wrong-rank": (rank, "rank 4 in the weights, 16 in adapter_config.json"),
        "foreign-module": (foreign, "self_attn.c_attn, which this llama base has no linear"),
        "wrong-width": (wide, "LoRA maps 96 -> 64 features, the base's layer 64 -> 64"),
        "bert-adapter": (for_bert, "encoder.layer.0.attention.self.query, which this llama"),
        "no-folder": (root / "nowhere", "does not exist"),
    }


def test_bad_adapters_are_named_and_the_base_and_good_ones_keep_serving(
    engine: DecoderEngine, llama_adapters: LlamaWithAdapters, tmp_path: Path
) -> None:
    bad = _bad_adapters(llama_adapters, tmp_path)
    specs = [AdapterSpec(name, f"file://{folder}") for name, (folder, _) in bad.items()]
    manager = attach_adapters(engine, [*specs, llama_adapters.specs[0]])
    listing = {entry["name"]: entry for entry in manager.listing()}
    for name, (_, message) in bad.items():
        assert listing[name]["state"] == "failed"
        assert message in listing[name]["error"], (name, listing[name]["error"])
        with pytest.raises(AdapterError, match=f"adapter '{name}'"):
            manager.resolve_model(name)
        with pytest.raises(AdapterError, match=f"adapter '{name}'"):
            engine.logits(IDS, [name])
    good = llama_adapters.specs[0].name
    assert listing[good]["state"] == "available"
    assert manager.resolve_model(good) == good
    assert manager.resolve_model(f"{engine.info.model_name}:{good}") == good
    assert manager.resolve_model(engine.info.model_name) is None
    with pytest.raises(UnknownAdapter):
        manager.resolve_model("never-listed")
    torch.testing.assert_close(engine.logits(IDS, [good]), engine.logits(IDS, [good]))
    assert not torch.equal(engine.logits(IDS, [good]), engine.logits(IDS))


def test_at_most_capacity_adapters_are_resident_least_recently_used_leaves_first(
    engine: DecoderEngine, llama_adapters: LlamaWithAdapters
) -> None:
    names = [spec.name for spec in llama_adapters.specs]
    alone = {}
    for name in names:  # the reference: each adapter resident alone
        fresh = load_engine(f"file://{llama_adapters.folder}", "fp32")
        assert isinstance(fresh, DecoderEngine)
        attach_adapters(fresh, llama_adapters.specs, capacity=1)
        alone[name] = fresh.logits(IDS, [name])
    manager = attach_adapters(engine, llama_adapters.specs, capacity=2)
    assert all(e["state"] == "available" for e in manager.listing())
    for name in [names[0], names[1], names[0], names[2]]:  # names[1] is least recent
        torch.testing.assert_close(engine.logits(IDS, [name]), alone[name], atol=1e-6, rtol=0)
    state = {e["name"]: e["state"] for e in manager.listing()}
    assert state == {names[0]: "resident", names[1]: "available", names[2]: "resident"}
    torch.testing.assert_close(engine.logits(IDS, [names[1]]), alone[names[1]], atol=1e-6, rtol=0)
    loads = {e["name"]: e["loads"] for e in manager.listing()}
    assert loads == {names[0]: 1, names[1]: 2, names[2]: 1}  # names[0] made room this time
    assert {e["name"]: e["state"] for e in manager.listing()}[names[0]] == "available"


def test_pinned_slots_are_never_evicted(
    engine: DecoderEngine, llama_adapters: LlamaWithAdapters
) -> None:
    names = [spec.name for spec in llama_adapters.specs]
    manager = attach_adapters(engine, llama_adapters.specs, capacity=2)
    slots = manager.acquire(names[:2])
    assert not manager.fits([names[2]])
    with pytest.raises(AdapterSlotsBusy):
        manager.acquire([names[2]])
    manager.release(slots[:1])
    assert manager.fits([names[2]])
    assert manager.acquire([names[2]]) == slots[:1]


def test_the_list_changes_without_reloading_the_base(
    engine: DecoderEngine, llama_adapters: LlamaWithAdapters
) -> None:
    first, second, third = llama_adapters.specs
    manager = attach_adapters(engine, [first, second])
    before = engine.logits(IDS, [first.name])
    weights = engine.model.layers[0].attn.wq
    errors = manager.configure([first, third])
    assert errors == []
    assert manager.names() == [first.name, third.name]
    with pytest.raises(UnknownAdapter):
        manager.resolve_model(second.name)
    torch.testing.assert_close(engine.logits(IDS, [first.name]), before, atol=0, rtol=0)
    assert engine.model.layers[0].attn.wq is weights  # the same module: no reload


def test_a_removed_adapter_in_use_leaves_when_its_rows_end(
    engine: DecoderEngine, llama_adapters: LlamaWithAdapters
) -> None:
    first = llama_adapters.specs[0]
    manager = attach_adapters(engine, [first], capacity=1)
    slots = manager.acquire([first.name])
    manager.configure([])
    assert manager.names() == []
    assert any(layer.active for layer in manager._layers.values())  # still held by its row
    manager.release(slots)
    assert all(not layer.active for layer in manager._layers.values())


def test_an_adapter_on_new_layers_in_a_low_slot_batches_with_one_in_a_high_slot(
    engine: DecoderEngine, llama_adapters: LlamaWithAdapters
) -> None:
    qv, everything, mlp = (spec.name for spec in llama_adapters.specs)
    manager = attach_adapters(engine, llama_adapters.specs, capacity=2)
    engine.logits(IDS, [qv])  # slot 1: wraps q and v
    engine.logits(IDS, [mlp])  # slot 2: wraps k, o and down
    engine.logits(IDS, [mlp])
    alone = {name: engine.logits(IDS, [name]) for name in (everything, mlp)}  # evicts qv
    assert {e["name"]: e["state"] for e in manager.listing()}[qv] == "available"
    # `everything` sits in slot 1 and brought gate/up, whose stacks must still index slot 2.
    mixed = engine.logits(IDS * 3, [mlp, everything, None])
    torch.testing.assert_close(mixed[0], alone[mlp][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed[1], alone[everything][0], atol=1e-5, rtol=0)
