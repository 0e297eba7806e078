"""The base class every tierwise API type derives from: camelCase on the wire, strict fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue
from pydantic.alias_generators import to_camel

JsonDict = dict[str, JsonValue]


class ApiModel(BaseModel):
    """Fields are snake_case in Python and camelCase in manifests; unknown fields are errors.

    Field docstrings become the field descriptions of the CRD schema and of
    `docs/api.md`, so they are written for the people reading those.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=False,
        frozen=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The manifest form: camelCase keys, canonical quantity strings, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry: a CEL rule the API server enforces."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry
