"""Turn pydantic validation errors into one line per problem, named by manifest field path."""

from __future__ import annotations

from pydantic import ValidationError


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif item.startswith("function-") or item in {"tagged-union", "union"}:
            continue  # pydantic's internal step names say nothing to a reader
        else:
            parts.append(item)
    return ".".join(parts)


def _message(err: dict[str, object]) -> str:
    ctx = err.get("ctx")
    if isinstance(ctx, dict) and isinstance(ctx.get("error"), Exception):
        return str(ctx["error"])
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        return "unknown field (check its spelling and the apiVersion)"
    if err.get("type") == "missing":
        return "required field is missing"
    return msg


def format_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    """`["spec.slo.latencyP99: \\"fast\\" is not a duration (examples: 50ms, 2s)"]`."""
    lines = []
    for err in exc.errors(include_url=False):
        path = _path(prefix, tuple(err["loc"]))
        lines.append(f"{path}: {_message(dict(err))}" if path else _message(dict(err)))
    return list(dict.fromkeys(lines))


class InvalidSpec(ValueError):
    """A resource that cannot work as written; `problems` lists each field and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
