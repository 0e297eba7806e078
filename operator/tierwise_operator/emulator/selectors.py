"""Label selectors (equality and set-based) and field selectors, parsed from query strings.

Label selectors follow the API server's grammar: `a=b`, `a==b`, `a!=b`,
`a in (x,y)`, `a notin (x)`, `a`, `!a`, joined by commas. Field selectors
accept any dotted path (`metadata.name`, `involvedObject.uid`, `status.phase`)
with `=`, `==` or `!=`; the real server allows a fixed set per kind, a superset
is harmless for clients that only use allowed ones.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_SET_BASED = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQUALITY = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")


class SelectorError(ValueError):
    """A selector that does not parse (answered with 400)."""


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!":
            return self.key not in labels
        if self.operator in {"=", "in"}:
            return value in self.values
        return value not in self.values  # "!=" and "notin" match objects without the label


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_labels(selector: str) -> list[Requirement]:
    requirements = []
    for term in _split(selector):
        equality = _EQUALITY.match(term)
        if equality:
            key, op, value = equality.groups()
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
            continue
        set_based = _SET_BASED.match(term)
        if not set_based:
            raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
        bang, key, op, values = set_based.groups()
        if op:
            items = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(key, op, items))
        else:
            requirements.append(Requirement(key, "!" if bang else "exists"))
    return requirements


def label_predicate(selector: str | None) -> Predicate:
    requirements = parse_labels(selector or "")

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches


def field_value(obj: dict[str, Any], path: str) -> str:
    """A field as the API server compares it: a string, empty when absent."""
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return str(node).lower()
    return str(node)


def field_predicate(selector: str | None) -> Predicate:
    terms = []
    for term in _split(selector or ""):
        match = _EQUALITY.match(term)
        if not match:
            raise SelectorError(f"invalid field selector: {term.strip()!r}")
        terms.append(match.groups())

    def matches(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, path) == value) != (op == "!=") for path, op, value in terms)

    return matches


def selector_from_match(selector: Mapping[str, Any] | None) -> Predicate:
    """A predicate from a LabelSelector object (matchLabels and matchExpressions)."""
    requirements = [
        Requirement(k, "=", frozenset([v]))
        for k, v in (selector or {}).get("matchLabels", {}).items()
    ]
    for expr in (selector or {}).get("matchExpressions", []):
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}[
            expr["operator"]
        ]
        requirements.append(Requirement(expr["key"], op, frozenset(expr.get("values", []))))

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches
