"""API errors with the Status bodies a real API server sends (kubectl and kopf parse them)."""

from __future__ import annotations

from typing import Any

from kmock import KubernetesError

from .registry import ResourceType


class ApiError(KubernetesError):
    """An error answered with a `Status` object; kmock renders it from these fields."""


def _details(rtype: ResourceType | None, name: str | None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name is not None:
        details["name"] = name
    if rtype is not None:
        details["group"] = rtype.group
        details["kind"] = rtype.plural
    return {**details, **extra}


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified} "{name}" not found', _details(rtype, name))


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'namespaces "{namespace}" not found',
        {"name": namespace, "kind": "namespaces"},
    )


def namespace_terminating(rtype: ResourceType, name: str, namespace: str) -> ApiError:
    """403, as the NamespaceLifecycle admission answers a create in a Terminating namespace."""
    why = f"unable to create new content in namespace {namespace} because it is being terminated"
    cause = {"reason": "NamespaceTerminating", "message": why, "field": "metadata.namespace"}
    return ApiError(
        403,
        "Forbidden",
        f'{rtype.qualified} "{name}" is forbidden: {why}',
        _details(rtype, name, causes=[cause]),
    )


def unknown_resource(path: str) -> ApiError:
    return ApiError(
        404, "NotFound", "the server could not find the requested resource", {"path": path}
    )


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists', _details(rtype, name)
    )


def conflict(rtype: ResourceType, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, _details(rtype, name))


def apply_conflict(rtype: ResourceType, name: str, conflicts: list[tuple[str, str]]) -> ApiError:
    """Server-side apply found fields owned by other managers (`force` takes them over)."""
    lines = [f'conflict with "{manager}": {field}' for manager, field in conflicts]
    noun = "conflict" if len(lines) == 1 else "conflicts"
    message = f"Apply failed with {len(lines)} {noun}: " + "; ".join(lines)
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": f}
        for m, f in conflicts
    ]
    return ApiError(409, "Conflict", message, _details(rtype, name, causes=causes))


def invalid(rtype: ResourceType, name: str, problems: list[str]) -> ApiError:
    """422 with one cause per problem; each problem reads `field.path: message`."""
    causes = []
    for problem in problems:
        field, _, message = problem.partition(": ")
        causes.append({"reason": "FieldValueInvalid", "message": message, "field": field})
    shown = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    message = f'{rtype.kind}.{rtype.group or "core"} "{name}" is invalid: {shown}'
    details = {"name": name, "group": rtype.group, "kind": rtype.kind, "causes": causes}
    return ApiError(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, {"causes": [{"message": message}]})


def unprocessable(message: str) -> ApiError:
    """422 for a JSON patch that cannot apply (kopf relies on it for its `test` operations)."""
    return ApiError(422, "Invalid", message, {"causes": [{"message": message}]})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json-patch+json, application/merge-patch+json, "
        f"application/apply-patch+yaml (not {content_type or 'none'})",
        {"causes": [{"message": f"unsupported media type {content_type!r}"}]},
    )


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, {"causes": [{"message": message}]})
