"""Evaluation texts: the bundled default set or a user's JSON-lines file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tierwise_operator.api import EvalSetInfo

BUILTIN = "builtin://default"


class EvalSetError(ValueError):
    """The evaluation set cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class EvalSet:
    name: str
    texts: tuple[str, ...]
    digest: str

    @property
    def info(self) -> EvalSetInfo:
        return EvalSetInfo(name=self.name, digest=self.digest, size=len(self.texts))


def load_eval_set(path: str | None, limit: int | None = None) -> EvalSet:
    """`{"text": ...}` per line; the bundled set when `path` is None or `builtin://default`."""
    if path is None or path == BUILTIN:
        raw = resources.files("tierwise_runtime").joinpath("data/eval_default.jsonl").read_text()
        name = BUILTIN
    else:
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise EvalSetError(f"eval set {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise EvalSetError(f"eval set {path}: not UTF-8 text ({exc.reason})") from exc
        name = Path(path).name
    texts = _parse(name, raw)
    if limit is not None:
        texts = texts[:limit]
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    return EvalSet(name=name, texts=tuple(texts), digest=digest)


def _parse(name: str, raw: str) -> list[str]:
    texts = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalSetError(f"eval set {name} line {number}: not JSON ({exc.msg})") from exc
        text = doc.get("text") if isinstance(doc, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise EvalSetError(
                f'eval set {name} line {number}: expected {{"text": "<non-empty string>"}}'
            )
        texts.append(text)
    if not texts:
        raise EvalSetError(f"eval set {name} is empty: it needs at least one text")
    return texts
