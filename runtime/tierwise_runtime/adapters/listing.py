"""The adapters list file (a ConfigMap mount): parsed, and re-read while serving, so adding or
removing an adapter never restarts the base's replica."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from .errors import AdapterError
from .manager import AdapterSpec

log = logging.getLogger(__name__)

LIST_FILE = "adapters.json"
"""The ConfigMap key the operator writes: {"adapters": [{"name": ..., "source": ...}]}."""


class AdapterListError(ValueError):
    """The list file is not what the operator writes; the previous list stays in force."""


def parse_adapter_list(text: str) -> list[AdapterSpec]:
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise AdapterListError(f"not JSON: {exc}") from None
    entries = body.get("adapters") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise AdapterListError('expected {"adapters": [{"name": ..., "source": ...}, ...]}')
    specs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("name", "source")
        ):
            raise AdapterListError(f"adapters[{i}] needs string fields name and source")
        specs.append(AdapterSpec(entry["name"], entry["source"]))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise AdapterListError("adapter names must be unique")
    return specs


def read_adapter_list(path: Path) -> list[AdapterSpec]:
    """The specs in `path` (a missing file lists none: the ConfigMap may not exist yet)."""
    if not path.exists():
        return []
    return parse_adapter_list(path.read_text())


Apply = Callable[[list[AdapterSpec]], Awaitable[list[AdapterError]]]


async def watch_adapter_list(path: Path, apply: Apply, interval_s: float = 5.0) -> None:
    """Applies the list whenever the file's text changes (kubelet swaps a ConfigMap mount's
    symlink, so content, not mtime, is compared). A bad file is logged and ignored."""
    last: str | None = None
    while True:
        try:
            text = path.read_text() if path.exists() else '{"adapters": []}'
        except OSError as exc:
            log.warning("cannot read the adapters list %s: %s", path, exc)
            text = last or ""
        if text != last:
            last = text
            try:
                specs = parse_adapter_list(text)
            except AdapterListError as exc:
                log.error("the adapters list %s is ignored: %s", path, exc)
            else:
                errors = await apply(specs)
                log.info("adapters: %s", ", ".join(s.name for s in specs) or "none")
                for error in errors:
                    log.error("%s", error)
        await asyncio.sleep(interval_s)
