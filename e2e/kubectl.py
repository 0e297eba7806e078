"""kubectl for the e2e suite: every call the tests make to the cluster, with readable failures.

The suite drives the cluster only through kubectl, as a user would, so what it
checks is what `kubectl` shows against a real API server.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

Manifest = dict[str, Any]
T = TypeVar("T")


class KubectlFailed(RuntimeError):
    """A kubectl call exited non-zero; the message has the command and its stderr."""

    def __init__(self, args: Sequence[str], code: int, err: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {code}: {err.strip()}")
        self.code = code
        self.err = err


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Kubectl:
    """kubectl with the environment's KUBECONFIG, optionally pinned to one namespace."""

    namespace: str | None = None
    timeout: float = 120.0

    def in_namespace(self, namespace: str | None) -> Kubectl:
        return replace(self, namespace=namespace)

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> Result:
        command = [*(["--namespace", self.namespace] if self.namespace else []), *args]
        done = subprocess.run(
            ["kubectl", *command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout or self.timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise KubectlFailed(command, done.returncode, done.stderr)
        return Result(done.returncode, done.stdout, done.stderr)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--output", "json").out)

    def get(self, kind: str, name: str) -> Manifest | None:
        """One object, or None when it does not exist."""
        out = self.run("get", kind, name, "--ignore-not-found", "--output", "json").out
        return json.loads(out) if out.strip() else None

    def items(
        self, kind: str, selector: str | None = None, fields: str | None = None
    ) -> list[Manifest]:
        """Objects of a kind (in the namespace, or cluster-scoped), by label or field selector."""
        args = ["get", kind, *(["--selector", selector] if selector else [])]
        args += ["--field-selector", fields] if fields else []
        found: list[Manifest] = self.json(*args)["items"]
        return found

    def names(self, kind: str, selector: str | None = None) -> list[str]:
        return sorted(i["metadata"]["name"] for i in self.items(kind, selector))

    def apply(self, *manifests: Manifest, check: bool = True) -> Result:
        """`kubectl apply -f -` with the manifests as one YAML stream."""
        return self.run("apply", "--filename", "-", stdin=dump(manifests), check=check)

    def apply_files(self, *paths: Path, check: bool = True) -> Result:
        files = [arg for path in paths for arg in ("--filename", str(path))]
        return self.run("apply", *files, check=check)

    def delete(self, kind: str, *names: str, wait: bool = True) -> Result:
        return self.run(
            "delete",
            kind,
            *names,
            "--ignore-not-found",
            f"--wait={str(wait).lower()}",
            timeout=300,
        )

    def api_versions(self) -> set[str]:
        return set(self.run("api-versions").out.split())

    def can_i(self, verb: str, resource: str, user: str, *extra: str) -> bool:
        """`kubectl auth can-i` as `user`: exit 0 means yes, 1 means no, anything else fails."""
        result = self.run("auth", "can-i", verb, resource, f"--as={user}", *extra, check=False)
        answer = result.out.strip().splitlines()[-1:] or [""]
        if result.code not in (0, 1) or answer[0] not in ("yes", "no"):
            raise KubectlFailed(["auth", "can-i", verb, resource], result.code, result.err)
        return answer[0] == "yes"


def dump(manifests: Sequence[Manifest]) -> str:
    return yaml.safe_dump_all(list(manifests), sort_keys=False)


def eventually(
    check: Callable[[], T | None],
    what: str,
    timeout: float = 120.0,
    interval: float = 1.0,
    context: Callable[[], str] | None = None,
) -> T:
    """Call `check()` until it returns something truthy; on timeout fail naming `what`, the
    last value and, when given, `context()` (e.g. the model's Ready condition)."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            extra = f"; {context()}" if context is not None else ""
            raise AssertionError(f"waited {timeout:.0f}s for {what}; last: {last!r}{extra}")
        time.sleep(interval)


def condition(obj: Manifest | None, type_: str) -> Manifest:
    """The condition of that type in `status.conditions`, or {} when absent."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}
