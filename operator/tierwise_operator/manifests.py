"""Read tierwise resources from YAML files (many documents each) into typed API objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .api import InferenceModel, InvalidSpec, TierClass, defaults, format_validation_error

Resource = InferenceModel | TierClass
KINDS: dict[str, type[InferenceModel] | type[TierClass]] = {
    "InferenceModel": InferenceModel,
    "TierClass": TierClass,
}


def iter_documents(paths: Iterable[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every YAML document in the files (a directory: its files in name order, like kubectl -f)."""
    for path in paths:
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            try:
                docs = list(yaml.safe_load_all(file.read_text()))
            except yaml.YAMLError as exc:
                raise InvalidSpec([f"{file}: not valid YAML: {exc}"]) from exc
            for doc in docs:
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise InvalidSpec(
                        [f"{file}: a document is a {type(doc).__name__}, not a mapping"]
                    )
                yield file, doc


def parse_resource(doc: dict[str, Any]) -> Resource:
    """The typed resource, or InvalidSpec naming every bad field (``spec.slo.latencyP99: ...``)."""
    kind = doc.get("kind")
    if doc.get("apiVersion") != defaults.API_VERSION or kind not in KINDS:
        raise InvalidSpec(
            [
                f"apiVersion/kind: expected {defaults.API_VERSION} {' or '.join(KINDS)}, "
                f"got {doc.get('apiVersion')} {kind}"
            ]
        )
    try:
        return KINDS[kind].model_validate(doc)
    except ValidationError as exc:
        raise InvalidSpec(format_validation_error(exc)) from exc


def load_resources(paths: Iterable[Path]) -> tuple[list[InferenceModel], list[TierClass]]:
    """InferenceModels and TierClasses from files; other kinds (ConfigMaps...) are skipped."""
    models: list[InferenceModel] = []
    tiers: list[TierClass] = []
    problems: list[str] = []
    for file, doc in iter_documents(paths):
        if doc.get("kind") not in KINDS:
            continue
        name = (doc.get("metadata") or {}).get("name", "?")
        try:
            resource = parse_resource(doc)
        except InvalidSpec as exc:
            problems += [f"{file}: {doc.get('kind')}/{name}: {p}" for p in exc.problems]
            continue
        if isinstance(resource, InferenceModel):
            models.append(resource)
        else:
            tiers.append(resource)
    if problems:
        raise InvalidSpec(problems)
    return models, tiers
