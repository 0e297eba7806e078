"""Optional API keys: a file (a mounted Secret) mapping each key to the models it may call.

    keys:
      - name: support-team        # shown in logs, never the key
        key: sk-support-1234
        allow: ["support/*"]      # namespace/name patterns (fnmatch): "*", "ns/*", "ns/model"

Without a file every request is let in. The file is read again when it
changes (a Secret's mounted files change in place when the Secret does).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from .errors import openai_error

#: How often the file's modification time is looked at.
RELOAD_CHECK_S = 5.0


class KeysError(ValueError):
    """The keys file cannot be used; the message says where."""


@dataclass(frozen=True)
class Grant:
    name: str
    allow: tuple[str, ...]

    def allows(self, label: str) -> bool:
        return any(fnmatch.fnmatchcase(label, pattern) for pattern in self.allow)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_keys(text: str, source: str = "keys") -> dict[str, Grant]:
    """Grants by the SHA-256 of their key; a bad file raises KeysError naming the entry."""
    try:
        doc: Any = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KeysError(f"{source}: not YAML: {exc}") from exc
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise KeysError(f"{source}: expected a mapping with a list `keys`")
    grants: dict[str, Grant] = {}
    for i, entry in enumerate(entries):
        where = f"{source}: keys[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
            raise KeysError(f"{where}: needs a non-empty string `key`")
        allow = entry.get("allow", [])
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise KeysError(f"{where}: `allow` must be a list of namespace/name patterns")
        digest = _digest(entry["key"])
        if digest in grants:
            raise KeysError(f"{where}: the same key appears twice")
        grants[digest] = Grant(str(entry.get("name") or f"keys[{i}]"), tuple(allow))
    return grants


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class KeyRing:
    """The grants in force; `None` path: no keys, everything allowed."""

    def __init__(self, path: Path | None, clock: Any = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self.grants: dict[str, Grant] = {}
        self._mtime: float | None = None
        self._checked = -1e18
        if path is not None:
            self._load()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def _load(self) -> None:
        assert self.path is not None
        try:
            mtime = os.stat(self.path).st_mtime
            text = self.path.read_text()
        except OSError as exc:
            raise KeysError(f"{self.path}: {exc.strerror}") from exc
        self.grants = parse_keys(text, str(self.path))
        self._mtime = mtime

    def refresh(self) -> None:
        """Re-read a changed file; a file that turned bad keeps the last good grants."""
        now = self.clock()
        if self.path is None or now - self._checked < RELOAD_CHECK_S:
            return
        self._checked = now
        try:
            if os.stat(self.path).st_mtime != self._mtime:
                self._load()
        except (OSError, KeysError):
            return

    def grant(self, authorization: str | None) -> Grant | web.Response | None:
        """The caller's grant; a 401 answer for a missing or unknown key; None without keys."""
        if not self.enabled:
            return None
        self.refresh()
        token = bearer(authorization)
        if token is None:
            return openai_error(
                401,
                "you must provide an API key (Authorization: Bearer <key>)",
                "missing_api_key",
            )
        found = self.grants.get(_digest(token))
        if found is None:
            return openai_error(401, "incorrect API key provided", "invalid_api_key")
        return found


def forbidden(grant: Grant, label: str) -> web.Response:
    return openai_error(
        403, f"this API key ({grant.name}) may not call the model {label}", "model_not_allowed"
    )
