"""API keys from a mounted Secret: who may call which models, and OpenAI-style refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tierwise_operator.gateway.keys import Grant, KeyRing, KeysError, parse_keys

from .conftest import StartGateway, StartReplica

KEYS = """
keys:
  - name: support
    key: sk-support
    allow: ["support/*"]
  - name: ops
    key: sk-ops
    allow: ["*"]
"""


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(KEYS)
    return path


def test_grants_match_namespace_and_name_patterns() -> None:
    grants = {g.name: g for g in parse_keys(KEYS).values()}
    assert grants["support"].allows("support/ticket-embedder")
    assert not grants["support"].allows("default/ticket-embedder")
    assert grants["ops"].allows("anything/at-all")
    assert not Grant("none", ()).allows("support/x")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("keys: nope", "expected a mapping with a list `keys`"),
        ("keys:\n  - allow: ['*']", "keys[0]: needs a non-empty string `key`"),
        ("keys:\n  - key: a\n    allow: '*'", "keys[0]: `allow` must be a list"),
        ("keys:\n  - key: a\n  - key: a", "keys[1]: the same key appears twice"),
        ("keys: [", "not YAML"),
    ],
)
def test_a_bad_keys_file_is_refused_with_the_entry_named(text: str, problem: str) -> None:
    with pytest.raises(KeysError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_keys(text, "keys.yaml")


def test_a_changed_file_is_read_again_and_a_broken_one_keeps_the_last_grants(
    keys_file: Path,
) -> None:
    clock = [0.0]
    ring = KeyRing(keys_file, clock=lambda: clock[0])
    assert isinstance(ring.grant("Bearer sk-ops"), Grant)
    keys_file.write_text("keys:\n  - key: sk-new\n    allow: ['*']\n")
    os.utime(keys_file, (1e9, 1e9))
    clock[0] = 10.0
    assert isinstance(ring.grant("Bearer sk-new"), Grant)
    assert not isinstance(ring.grant("Bearer sk-ops"), Grant)
    keys_file.write_text("keys: [")
    os.utime(keys_file, (2e9, 2e9))
    clock[0] = 20.0
    assert isinstance(ring.grant("Bearer sk-new"), Grant)


async def test_missing_unknown_and_forbidden_keys_get_401_and_403(
    gateway: StartGateway, replica: StartReplica, keys_file: Path
) -> None:
    setup = await gateway(keys=KeyRing(keys_file))
    rep = await replica("r1")
    setup.route("ticket-embedder", "support").set_endpoints([rep.url])
    setup.route("other", "default").set_endpoints([rep.url])
    missing = await setup.post("ticket-embedder")
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "missing_api_key"
    wrong = await setup.post("ticket-embedder", headers={"Authorization": "Bearer sk-nope"})
    assert wrong.status == 401
    body = await wrong.json()
    assert body["error"] == {
        "message": "incorrect API key provided", "type": "authentication_error",
        "param": None, "code": "invalid_api_key",
    }  # fmt: skip
    forbidden = await setup.post("other", headers={"Authorization": "Bearer sk-support"})
    assert forbidden.status == 403
    assert (await forbidden.json())["error"]["code"] == "model_not_allowed"
    allowed = await setup.post("ticket-embedder", headers={"Authorization": "Bearer sk-support"})
    assert allowed.status == 200
    assert "authorization" not in rep.headers[-1]  # the key stays at the gateway


async def test_models_lists_only_what_the_key_may_call(
    gateway: StartGateway, keys_file: Path
) -> None:
    setup = await gateway(keys=KeyRing(keys_file))
    setup.route("ticket-embedder", "support")
    setup.route("other", "default")
    listed = await setup.client.get("/v1/models", headers={"Authorization": "Bearer sk-support"})
    assert [m["id"] for m in (await listed.json())["data"]] == ["ticket-embedder"]
    everything = await setup.client.get("/v1/models", headers={"Authorization": "Bearer sk-ops"})
    data = json.loads(await everything.text())["data"]
    assert sorted(m["id"] for m in data) == ["other", "ticket-embedder"]
