"""Validate an object against a CRD's OpenAPI schema and CEL rules, as the API server would.

Used by the tests (every sample must pass, every invalid sample must fail) and
by the local API emulator, which otherwise accepts anything. OpenAPI keywords
are checked with ``jsonschema`` after translating the Kubernetes extensions;
``x-kubernetes-validations`` rules run through ``celpy``; list-type map keys
and sets are checked for duplicates.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError


def validate_object(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every problem with ``obj``, as ``field.path: message``; empty when it is valid."""
    problems = [_format_schema_error(err) for err in _schema_errors(obj, schema)]
    if problems:
        return problems  # CEL rules only run on objects that pass the schema
    return list(_rule_errors(obj, schema, ""))


def _schema_errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[jsonschema.ValidationError]:
    validator = jsonschema.Draft202012Validator(_to_jsonschema_cached(json.dumps(schema)))
    return sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))


def _format_schema_error(err: jsonschema.ValidationError) -> str:
    path = _dotted(err.absolute_path)
    if err.validator == "required":
        missing = err.message.split(" is a required")[0].strip("'\"")
        return f"{path}.{missing}: Required value" if path else f"{missing}: Required value"
    if err.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in err.validator_value)
        return f"{path}: Unsupported value: {json.dumps(err.instance)}: supported values: {allowed}"
    return f"{path}: Invalid value: {json.dumps(err.instance)}: {err.message}"


def _dotted(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@functools.lru_cache(maxsize=32)
def _to_jsonschema_cached(schema_json: str) -> dict[str, Any]:
    converted: dict[str, Any] = _to_jsonschema(json.loads(schema_json))
    return converted


def _to_jsonschema(node: Any) -> Any:
    """Translate Kubernetes' OpenAPI dialect into plain JSON Schema 2020-12."""
    if isinstance(node, list):
        return [_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in {"nullable", "description"}:
            continue
        if key in {"properties"}:
            out[key] = {name: _to_jsonschema(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"}:
            out[key] = _to_jsonschema(value)
        elif key in {"exclusiveMinimum", "exclusiveMaximum"} and isinstance(value, bool):
            continue  # folded into minimum/maximum below
        else:
            out[key] = value
    if node.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    if node.get("exclusiveMaximum") is True:
        out["exclusiveMaximum"] = out.pop("maximum")
    if node.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        out["type"] = ["object", "array", "string", "number", "boolean"]
    if node.get("nullable"):
        types = out.get("type")
        out["type"] = [*types, "null"] if isinstance(types, list) else [types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _rule_errors(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """CEL rules and list-type uniqueness, evaluated bottom-up like the API server."""
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value and value[name] is not None:
                yield from _rule_errors(value[name], sub, f"{path}.{name}".lstrip("."))
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for name, sub_value in value.items():
                yield from _rule_errors(sub_value, additional, f"{path}.{name}".lstrip("."))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _rule_errors(item, schema["items"], f"{path}[{index}]")
        yield from _list_type_errors(value, schema, path)
    for rule in schema.get("x-kubernetes-validations", []):
        if not _evaluate(rule["rule"], value):
            where = path + rule.get("fieldPath", "") if rule.get("fieldPath") else path
            yield f"{where}: Invalid value: {rule.get('message') or rule['rule']}"


def _list_type_errors(value: list[Any], schema: dict[str, Any], path: str) -> Iterator[str]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen = [json.dumps(v, sort_keys=True) for v in value]
        for index, item in enumerate(seen):
            if item in seen[:index]:
                yield f"{path}[{index}]: Duplicate value: {item}"
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen_keys: list[tuple[Any, ...]] = []
        for index, item in enumerate(value):
            key = tuple(item.get(k) for k in keys) if isinstance(item, dict) else (item,)
            if key in seen_keys:
                shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in zip(keys, key, strict=True))
                yield f"{path}[{index}]: Duplicate value: {{{shown}}}"
            seen_keys.append(key)


@functools.lru_cache(maxsize=256)
def _compile(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def _evaluate(rule: str, value: Any) -> bool:
    result = _compile(rule).evaluate({"self": json_to_cel(value)})
    if isinstance(result, CELEvalError):
        raise ValueError(f"CEL rule {rule!r} failed to evaluate: {result}")
    return bool(result)
