"""Adapters over HTTP: `model` names an adapter, concurrent requests for different adapters
share the running batch, /v1/models lists them with state, the list file is re-read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tierwise_runtime.adapters.attach import attach_adapters
from tierwise_runtime.adapters.listing import read_adapter_list
from tierwise_runtime.adapters.synthetic import write_lora
from tierwise_runtime.engine import Engine
from tierwise_runtime.loader import load_engine
from tierwise_runtime.synthetic import write_llama

from .conftest import Client, StartServer, assert_error, lifecycle, wait_until

PROMPT = "w5 w7 w9 w11"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served-lora")
    base = write_llama(root / "base", vocab=256, dim=64, layers=2, heads=4, kv_heads=2,
                       intermediate=128)  # fmt: skip
    config = json.loads((base / "config.json").read_text())
    for seed, targets in enumerate([("q_proj", "v_proj"), ("gate_proj", "down_proj"),
                                    ("o_proj", "k_proj", "up_proj")], start=1):  # fmt: skip
        write_lora(root / f"tuned-{seed}", config, targets=targets, rank=4, seed=seed, std=0.3)
    (root / "broken").mkdir()
    return root


def _list(models: Path, names: list[str], path: Path) -> Path:
    entries = [{"name": n, "source": f"file://{models / n}"} for n in names]
    path.write_text(json.dumps({"adapters": entries}))
    return path


def _loader(models: Path, listing: Path, capacity: int = 2) -> Any:
    def load() -> Engine:
        engine = load_engine(f"file://{models / 'base'}", "fp32", name="base")
        attach_adapters(engine, read_adapter_list(listing), capacity=capacity)
        return engine

    return load


async def _complete(client: Client, model: str, prompt: str = PROMPT) -> dict[str, Any]:
    body = {"model": model, "prompt": prompt, "max_tokens": 8, "temperature": 0}
    response = await client.post("/v1/completions", json=body)
    data: dict[str, Any] = await response.json()
    assert response.status == 200, data
    return data


async def test_requests_for_adapters_and_the_base_batched_together_equal_each_alone(
    start_server: StartServer, models: Path, tmp_path: Path
) -> None:
    names = ["tuned-1", "tuned-2", "tuned-3"]
    listing = _list(models, names, tmp_path / "adapters.json")
    client = await start_server(_loader(models, listing, capacity=3), max_batch=8)
    alone = {m: await _complete(client, m) for m in ["base", *names]}
    texts = {m: r["choices"][0]["text"] for m, r in alone.items()}
    assert len(set(texts.values())) == 4  # every adapter changes what is generated
    assert alone["tuned-2"]["model"] == "tuned-2"
    order = ["tuned-1", "base", "tuned-2", "tuned-3"] * 2
    together = await asyncio.gather(*(_complete(client, m) for m in order))
    assert [r["choices"][0]["text"] for r in together] == [texts[m] for m in order]
    prefixed = await _complete(client, "base:tuned-3")
    assert prefixed["choices"][0]["text"] == texts["tuned-3"]


async def test_models_lists_adapters_with_their_state(
    start_server: StartServer, models: Path, tmp_path: Path
) -> None:
    listing = _list(models, ["tuned-1", "tuned-2", "broken"], tmp_path / "adapters.json")
    client = await start_server(_loader(models, listing, capacity=1))
    await _complete(client, "tuned-2")
    data = (await (await client.get("/v1/models")).json())["data"]
    assert [m["id"] for m in data] == ["base", "tuned-1", "tuned-2", "broken"]
    state = {m["id"]: m["tierwise"]["adapter"]["state"] for m in data[1:]}
    assert state == {"tuned-1": "available", "tuned-2": "resident", "broken": "failed"}
    assert all(m["parent"] == "base" for m in data[1:])
    assert "adapter_config.json does not exist" in data[3]["tierwise"]["adapter"]["error"]
    assert data[2]["tierwise"]["adapter"]["bytes"] > 0


async def test_a_broken_or_unknown_adapter_is_refused_by_name_and_the_rest_serve(
    start_server: StartServer, models: Path, tmp_path: Path
) -> None:
    listing = _list(models, ["tuned-1", "broken"], tmp_path / "adapters.json")
    client = await start_server(_loader(models, listing))
    body = {"model": "broken", "prompt": PROMPT, "max_tokens": 2}
    response = await client.post("/v1/completions", json=body)
    assert response.status == 400
    error = await response.json()
    assert_error(error, "adapter_unavailable", "model")
    assert "adapter 'broken'" in error["error"]["message"]
    response = await client.post("/v1/completions", json=body | {"model": "nope"})
    assert response.status == 404
    assert "tuned-1" in (await response.json())["error"]["message"]
    await _complete(client, "tuned-1")
    await _complete(client, "base")


async def test_edits_to_the_list_file_apply_without_reloading_the_base(
    start_server: StartServer, models: Path, tmp_path: Path
) -> None:
    listing = _list(models, ["tuned-1"], tmp_path / "adapters.json")
    client = await start_server(
        _loader(models, listing), adapters_file=listing, adapters_poll_s=0.02
    )
    engine_info = lifecycle(client).info
    first = await _complete(client, "tuned-1")
    _list(models, ["tuned-1", "tuned-3"], listing)
    manager = lifecycle(client).adapters
    assert manager is not None
    await wait_until(lambda: "tuned-3" in manager.names(), timeout_s=30)
    await _complete(client, "tuned-3")
    _list(models, ["tuned-3"], listing)
    await wait_until(lambda: "tuned-1" not in manager.names(), timeout_s=30)
    response = await client.post("/v1/completions", json={"model": "tuned-1", "prompt": "x"})
    assert response.status == 404
    listing.write_text("{not json")  # a bad edit keeps the list in force
    await asyncio.sleep(0.1)
    assert manager.names() == ["tuned-3"]
    assert lifecycle(client).info is engine_info
    assert first["choices"][0]["text"]
