"""docs/api.md documents every field, generated from the models, and is kept up to date."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from tierwise_operator.api import InferenceModel, TierClass
from tierwise_operator.apidoc import render_api_doc

from .conftest import REPO, SAMPLES


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for info in model.model_fields.values():
            stack = [info.annotation]
            while stack:
                ann = stack.pop()
                stack.extend(typing.get_args(ann))
                if isinstance(ann, type) and issubclass(ann, BaseModel):
                    todo.append(ann)
    return seen


def test_every_field_has_a_description() -> None:
    missing = [
        f"{model.__name__}.{name}"
        for root in (InferenceModel, TierClass)
        for model in _models(root)
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert missing == []


def test_api_doc_is_generated_from_the_models() -> None:
    committed = (REPO / "docs" / "api.md").read_text()
    assert committed == render_api_doc(SAMPLES.relative_to(REPO)), "run `tierwise docs`"


def test_api_doc_names_every_spec_field() -> None:
    text = (REPO / "docs" / "api.md").read_text()
    for field in ("latencyP99", "maxDegradation", "memoryPerNode", "perGiBHour", "tierClasses"):
        assert f"`{field}`" in text


def test_operator_doc_lists_every_setting_and_is_generated() -> None:
    from tierwise_operator.operatordoc import render_operator_doc
    from tierwise_operator.settings import Settings

    committed = (REPO / "docs" / "operator.md").read_text()
    assert committed == render_operator_doc(), "run `tierwise docs`"
    for field in Settings.__dataclass_fields__:
        if field != "promql":
            assert f"`TIERWISE_{field.upper()}`" in committed
