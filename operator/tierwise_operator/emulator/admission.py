"""Server-set metadata on writes: uid, timestamps, generation, and the status/spec split.

On create the server names the object (`generateName`), stamps uid and
creationTimestamp, sets generation 1 and drops any status of kinds with a
status subresource. On update it keeps what clients may not change, bumps
generation only when something outside metadata and status changed, and
separates writes to the main resource (status ignored) from writes to
`/status` (only status taken).
"""

from __future__ import annotations

import copy
import datetime
import secrets
import string
import uuid
from typing import Any

from . import errors
from .registry import ResourceType

_IMMUTABLE_META = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)
_SERVER_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "selfLink",
)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's: no vowels, no look-alikes


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))


def prepare_create(rtype: ResourceType, body: Any, namespace: str | None) -> dict[str, Any]:
    """The object to store for a create request (name, namespace and server fields set)."""
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON or YAML object")
    obj = copy.deepcopy(body)
    _check_type(rtype, obj)
    meta = obj.setdefault("metadata", {})
    if not meta.get("name"):
        if not meta.get("generateName"):
            raise errors.invalid(
                rtype, "", ["metadata.name: Required value: name or generateName is required"]
            )
        meta["name"] = meta["generateName"] + random_suffix()
    _check_name(rtype, meta["name"])
    _set_namespace(rtype, meta, namespace)
    for key in _SERVER_META:
        meta.pop(key, None)
    meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
    if rtype.has_status:
        obj.pop("status", None)
    return obj


def _check_type(rtype: ResourceType, obj: dict[str, Any]) -> None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if (api_version and api_version != rtype.api_version) or (kind and kind != rtype.kind):
        raise errors.bad_request(
            f"the API version in the data ({api_version}) and kind ({kind}) do not match the "
            f"resource {rtype.api_version}, Kind={rtype.kind}"
        )
    obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind


def _check_name(rtype: ResourceType, name: Any) -> None:
    valid = (
        isinstance(name, str)
        and 0 < len(name) <= 253
        and all(c in string.ascii_lowercase + string.digits + "-." for c in name)
        and name[0].isalnum()
        and name[-1].isalnum()
    )
    if not valid:
        message = (
            f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must "
            "consist of lower case alphanumeric characters, '-' or '.'"
        )
        raise errors.invalid(rtype, str(name), [message])


def _set_namespace(rtype: ResourceType, meta: dict[str, Any], namespace: str | None) -> None:
    if not rtype.namespaced:
        meta.pop("namespace", None)
        return
    given = meta.get("namespace")
    if namespace and given and given != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = namespace or given or "default"


def prepare_update(
    rtype: ResourceType, old: dict[str, Any], body: Any, subresource: str | None
) -> dict[str, Any]:
    """The object to store when `body` replaces `old` (through `/status` or the main resource)."""
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON or YAML object")
    given_rv = (body.get("metadata") or {}).get("resourceVersion")
    if given_rv and given_rv != old["metadata"]["resourceVersion"]:
        raise errors.conflict(rtype, old["metadata"]["name"])
    if subresource == "status":
        new = copy.deepcopy(old)
        _set_or_drop(new, "status", body.get("status"))
        return new
    new = copy.deepcopy(body)
    _check_type(rtype, new)
    meta = new.setdefault("metadata", {})
    for key in _IMMUTABLE_META:
        _set_or_drop(meta, key, old["metadata"].get(key))
    if rtype.has_status:
        _set_or_drop(new, "status", old.get("status"))
    if _spec_of(new) != _spec_of(old):
        meta["generation"] = old["metadata"].get("generation", 1) + 1
    return new


def _set_or_drop(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = copy.deepcopy(value)


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in {"metadata", "status"}}
