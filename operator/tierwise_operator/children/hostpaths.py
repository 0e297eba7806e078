"""Which node folders a `file://` source may mount: only those under the admin's prefixes.

A `file://` source becomes a hostPath volume, so whoever may create an
InferenceModel could otherwise read any folder of the node (`/etc`, the
kubelet's credentials). The check is pure: the reconcile refuses such a spec
with InvalidSpec before any child is rendered.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from ..api import InferenceModel

FILE_SCHEME = "file://"
SETTING = "TIERWISE_HOST_PATH_PREFIXES"


def host_path(uri: str) -> str | None:
    """The node path a `file://` source names; None for other schemes."""
    return uri.removeprefix(FILE_SCHEME) if uri.startswith(FILE_SCHEME) else None


def is_under(path: str, prefixes: Sequence[str]) -> bool:
    """Whether `path` is one of `prefixes` or inside one, compared by whole path segments."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def path_problem(path: str, prefixes: Sequence[str]) -> str | None:
    """Why `path` may not be mounted from the node, or None when it may."""
    # A path that normalises to something else (`..`, `.`, `//`) would be checked
    # as one folder and mounted as another; it is refused rather than rewritten.
    if not path.startswith("/") or posixpath.normpath(path) != path:
        return f"{path!r} is not a normalised absolute path"
    if not prefixes:
        return f"file:// sources are disabled: the cluster admin allows no hostPath ({SETTING})"
    if not is_under(path, prefixes):
        allowed = ", ".join(prefixes)
        return f"{path} is not under a hostPath prefix the cluster admin allows ({allowed})"
    return None


def source_problems(model: InferenceModel, prefixes: Sequence[str]) -> list[str]:
    """A problem naming the field for every `file://` source outside the allowed prefixes."""
    spec = model.spec.model
    fields = [("spec.model.source.uri", spec.source.uri)]
    fields += [(f"spec.model.variants[{i}].source.uri", v.source.uri)
               for i, v in enumerate(spec.variants)]  # fmt: skip
    problems = []
    for field, uri in fields:
        path = host_path(uri)
        if path is not None and (problem := path_problem(path, prefixes)) is not None:
            problems.append(f"{field}: {problem}")
    return problems
