"""The JSONPath subset of printer columns: `.a.b`, `['a']`, `[0]`, `[*]` and `[?(@.x=="y")]`."""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)            # .field
      | \[\s*(?P<quoted>'[^']*'|"[^"]*")\s*\]     # ['field']
      | \[\s*(?P<index>-?\d+)\s*\]                # [0]
      | \[\s*(?P<all>\*)\s*\]                     # [*]
      | \[\s*\?\(\s*@(?P<path>(?:\.[A-Za-z0-9_-]+)+)\s*(?P<op>==|!=)\s*   # [?(@.a.b ==
        (?P<value>'[^']*'|"[^"]*"|[^)\s]+)\s*\)\s*\]                        #  "value")]
    """,
    re.VERBOSE,
)


class JsonPathError(ValueError):
    """An expression outside the supported subset."""


def parse(expression: str) -> list[tuple[str, Any]]:
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = text.removeprefix("$")
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise JsonPathError(f"unsupported JSONPath at {text[pos:]!r} in {expression!r}")
        steps.append(_step(match))
        pos = match.end()
    return steps


def _step(match: re.Match[str]) -> tuple[str, Any]:
    if match["field"] is not None:
        return ("field", match["field"])
    if match["quoted"] is not None:
        return ("field", match["quoted"][1:-1])
    if match["index"] is not None:
        return ("index", int(match["index"]))
    if match["all"] is not None:
        return ("all", None)
    raw = match["value"]
    value = raw[1:-1] if raw[0] in "'\"" else json.loads(raw)
    return ("filter", (match["path"].split(".")[1:], match["op"], value))


def evaluate(expression: str, obj: Any) -> list[Any]:
    """Every value the expression selects (an empty list when the path is absent)."""
    values = [obj]
    for kind, arg in parse(expression):
        values = [v for value in values for v in _apply(kind, arg, value)]
    return values


def _apply(kind: str, arg: Any, value: Any) -> list[Any]:
    if kind == "field":
        return [value[arg]] if isinstance(value, dict) and arg in value else []
    if not isinstance(value, list):
        return []
    if kind == "index":
        return [value[arg]] if -len(value) <= arg < len(value) else []
    if kind == "all":
        return list(value)
    path, op, wanted = arg
    return [item for item in value if (_lookup(item, path) == wanted) == (op == "==")]


def _lookup(item: Any, path: list[str]) -> Any:
    for part in path:
        item = item.get(part) if isinstance(item, dict) else None
    return item
