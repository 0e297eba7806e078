"""Generate apiextensions.k8s.io/v1 CRDs from the pydantic API models (never edit them by hand)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ..api import InferenceModelSpec, InferenceModelStatus, TierClassSpec, defaults

# Keywords of JSON Schema that pydantic emits but a CRD's JSONSchemaProps has no
# field for; they carry nothing the API server would use.
_DROPPED_KEYS = {"title", "examples", "$schema"}
# The order keys are written in, so a schema reads top-down like kubebuilder's.
_KEY_ORDER = (
    "type",
    "description",
    "format",
    "enum",
    "default",
    "nullable",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "additionalProperties",
    "items",
    "properties",
    "required",
    "x-kubernetes-validations",
)


@dataclass(frozen=True)
class CrdSpec:
    """What a CRD declares beyond its schema."""

    kind: str
    plural: str
    singular: str
    short_names: list[str]
    scope: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel] | None
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.plural}.{defaults.GROUP}"

    @property
    def filename(self) -> str:
        return f"{defaults.GROUP}_{self.plural}.yaml"


def _column(
    name: str, path: str, type_: str = "string", priority: int = 0, **extra: Any
) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    col.update(extra)
    return col


_READY = '.status.conditions[?(@.type=="Ready")]'

INFERENCE_MODEL = CrdSpec(
    kind="InferenceModel",
    plural="inferencemodels",
    singular="inferencemodel",
    short_names=["im"],
    scope="Namespaced",
    spec_model=InferenceModelSpec,
    status_model=InferenceModelStatus,
    description="A model to serve within an accuracy budget and SLOs, at the lowest cost.",
    printer_columns=[
        _column("Precision", ".status.precision"),
        _column("Tier", ".status.tierClass"),
        _column("Replicas", ".status.replicas", "integer"),
        _column("Ready", f"{_READY}.status"),
        _column("Cost/1k", ".status.cost.per1kInferences"),
        _column("Age", ".metadata.creationTimestamp", "date"),
        _column("Variant", ".status.variant", priority=1),
        _column("Available", ".status.readyReplicas", "integer", priority=1),
        _column("Delta", ".status.accuracy.delta", priority=1),
        _column("Baseline/1k", ".status.cost.baselinePer1kInferences", priority=1),
        _column("Reason", f"{_READY}.reason", priority=1),
    ],
)

TIER_CLASS = CrdSpec(
    kind="TierClass",
    plural="tierclasses",
    singular="tierclass",
    short_names=["tc"],
    scope="Cluster",
    spec_model=TierClassSpec,
    status_model=None,
    description="A memory tier of the fleet (GPU, CPU or NVMe offload), its capacity and price.",
    printer_columns=[
        _column("Kind", ".spec.kind"),
        _column("Memory", ".spec.memoryPerNode"),
        _column("Price", ".spec.pricing.perNodeHour"),
        _column("Age", ".metadata.creationTimestamp", "date"),
        _column("Devices", ".spec.devicesPerNode", "integer", priority=1),
        _column("Per-GiB-hour", ".spec.pricing.perGiBHour", priority=1),
    ],
)

ALL_CRDS = (INFERENCE_MODEL, TIER_CLASS)


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema rewritten into a structural OpenAPI v3 schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _rewrite(raw, defs)
    return schema


def _rewrite(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        # Inline the definition; keys beside the $ref (the field's own
        # description, default) win over the definition's.
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        target.update(node)
        node = target
    node = _collapse_nullable(node, defs)
    if "const" in node:
        node["enum"] = [node.pop("const")]
        node.setdefault("type", _json_type(node["enum"][0]))
    if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(
        node.get("exclusiveMinimum"), bool
    ):
        node["minimum"] = node.pop("exclusiveMinimum")
        node["exclusiveMinimum"] = True
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]  # extra="forbid": the API server prunes instead
    if "default" in node and node["default"] is None:
        del node["default"]
    out: dict[str, Any] = {}
    for key in sorted(node, key=_key_rank):
        value = node[key]
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _rewrite(sub, defs) for name, sub in value.items()}
        elif key in {"items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"}:
            out[key] = _rewrite(value, defs)
        elif key == "description":
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    return out


def _key_rank(key: str) -> int:
    return _KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER)


def _collapse_nullable(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` becomes X with `nullable: true`."""
    variants = node.get("anyOf")
    if not variants:
        return node
    non_null = [v for v in variants if v != {"type": "null"}]
    if len(non_null) == len(variants):
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if len(non_null) == 1:
        inner = non_null[0]
        if "$ref" in inner:
            inner = copy.deepcopy(defs[inner["$ref"].rsplit("/", 1)[-1]])
        merged = {**inner, **rest, "nullable": True}
        return merged
    return {**rest, "anyOf": non_null, "nullable": True}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def root_schema(crd: CrdSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": openapi_schema(crd.spec_model),
    }
    if crd.status_model is not None:
        properties["status"] = openapi_schema(crd.status_model)
    return {
        "type": "object",
        "description": crd.description,
        "required": ["spec"],
        "properties": properties,
    }


def build_crd(crd: CrdSpec) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": defaults.VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": root_schema(crd)},
        "additionalPrinterColumns": crd.printer_columns,
    }
    if crd.status_model is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": crd.name,
            "labels": {"app.kubernetes.io/part-of": "tierwise"},
        },
        "spec": {
            "group": defaults.GROUP,
            "scope": crd.scope,
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": crd.singular,
                "shortNames": crd.short_names,
                "categories": ["tierwise"],
            },
            "versions": [version],
        },
    }


HEADER = "# Generated by `tierwise crds` from tierwise_operator.api; do not edit by hand.\n"


def render(crd: CrdSpec) -> str:
    return HEADER + yaml.safe_dump(build_crd(crd), sort_keys=False, width=100)


KUSTOMIZATION = "kustomization.yaml"


def render_kustomization() -> str:
    """Lets `deploy/default` include the CRDs as a base (`kubectl apply -k`)."""
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [crd.filename for crd in ALL_CRDS],
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False)


def rendered_files() -> dict[str, str]:
    """Every file `tierwise crds` writes, by name."""
    files = {crd.filename: render(crd) for crd in ALL_CRDS}
    files[KUSTOMIZATION] = render_kustomization()
    return files


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
