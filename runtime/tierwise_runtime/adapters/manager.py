"""The adapters of one replica: which are listed, which are resident (LRU, bounded), which
failed and why; loads on demand and pins the slots that running rows use."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError, LoadError
from ..sources import resolve_source
from .errors import AdapterError, AdapterSlotsBusy, UnknownAdapter
from .lora_linear import BASE_SLOT, AdapterRows, LoraLinear, targetable, wrap_linears
from .peft_format import AdapterFiles, LinearShape, read_adapter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterSpec:
    """One listed adapter: the id clients pass as `model`, and where its files are."""

    name: str
    source: str


class AdapterState(StrEnum):
    RESIDENT = "resident"
    """Its weights are in memory, in a slot."""
    AVAILABLE = "available"
    """Checked against the base; loaded on the first request that names it."""
    FAILED = "failed"
    """Cannot be served; `error` says why."""


@dataclass(eq=False)
class _Entry:
    spec: AdapterSpec
    files: AdapterFiles | None
    error: str | None
    slot: int | None = None
    users: int = 0
    last_used: float = 0.0
    loads: int = 0
    last_load_s: float | None = None
    removed: bool = False

    @property
    def state(self) -> AdapterState:
        if self.files is None:
            return AdapterState.FAILED
        return AdapterState.AVAILABLE if self.slot is None else AdapterState.RESIDENT


@dataclass
class AdapterManager:
    """Engine-thread object (calls are serialised by a lock for the HTTP thread's reads)."""

    model: nn.Module
    architecture: str
    base_name: str
    capacity: int
    dtype: torch.dtype = torch.float32
    resolve: Callable[[str], Path] = resolve_source
    rows: AdapterRows = field(default_factory=AdapterRows)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("at least one adapter slot is needed")
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._by_slot: dict[int, _Entry] = {}
        self._free = list(range(1, self.capacity + 1))
        self._layers: dict[str, LoraLinear] = {}
        self._device = next(iter(self.model.state_dict().values())).device
        self._itemsize = torch.empty(0, dtype=self.dtype).element_size()
        self._shapes = {
            name: LinearShape(m.in_features, m.out_features)  # type: ignore[arg-type]
            for name, m in targetable(self.model).items()
        }

    # -- the list --

    def configure(self, specs: Sequence[AdapterSpec]) -> list[AdapterError]:
        """Makes `specs` the listed adapters: new ones are checked (not loaded), removed ones
        leave (at once, or when their last running row ends), changed sources reload."""
        with self._lock:
            wanted = {spec.name: spec for spec in specs}
            for name, entry in list(self._entries.items()):
                if wanted.get(name) != entry.spec:
                    self._remove(entry)
            errors = []
            for spec in specs:
                if spec.name not in self._entries:
                    entry = self._check(spec)
                    self._entries[spec.name] = entry
                    if entry.error is not None:
                        errors.append(AdapterError(spec.name, entry.error))
            return errors

    def _check(self, spec: AdapterSpec) -> _Entry:
        if spec.name == self.base_name or ":" in spec.name or not spec.name:
            why = "an adapter name must be non-empty, differ from the base and have no ':'"
            return _Entry(spec, None, why)
        try:
            folder = self.resolve(spec.source)
            files = read_adapter(spec.name, folder, self.architecture, self._shapes)
        except AdapterError as exc:
            log.warning("%s", exc)
            return _Entry(spec, None, exc.problem)
        except LoadError as exc:
            log.warning("adapter %r: %s", spec.name, exc)
            return _Entry(spec, None, str(exc))
        return _Entry(spec, files, None)

    def _remove(self, entry: _Entry) -> None:
        del self._entries[entry.spec.name]
        entry.removed = True
        if entry.users == 0:
            self._evict(entry)

    # -- requests --

    def resolve_model(self, model: str) -> str | None:
        """The adapter a request's `model` names (`adapter` or `base:adapter`), None for the
        base. Raises UnknownAdapter, or AdapterError for one listed but failed."""
        if model == self.base_name:
            return None
        name = model.removeprefix(self.base_name + ":")
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            raise UnknownAdapter(name)
        if entry.error is not None:
            raise AdapterError(name, entry.error)
        return name

    def acquire(self, names: Sequence[str | None]) -> list[int]:
        """One slot per row (the base's for None), loading adapters that are not resident;
        the slots stay pinned until `release`. Raises AdapterSlotsBusy, AdapterError."""
        with self._lock:
            if not self.fits(names):
                raise AdapterSlotsBusy(
                    f"all {self.capacity} adapter slots are in use by running sequences"
                )
            slots: list[int] = []
            try:
                for name in names:
                    slot = self._slot_of(name)
                    if slot != BASE_SLOT:
                        self._by_slot[slot].users += 1  # pinned at once: the next may evict
                    slots.append(slot)
            except Exception:
                self.release(slots)
                raise
            return slots

    def fits(self, names: Sequence[str | None]) -> bool:
        """Whether `acquire(names)` would find a slot for each adapter named."""
        with self._lock:
            wanted = {n for n in names if n is not None}
            missing = [n for n in wanted if self._resident_slot(n) is None]
            spare = len(self._free) + sum(
                1 for e in self._by_slot.values() if e.users == 0 and e.spec.name not in wanted
            )
            return len(missing) <= spare

    def release(self, slots: Sequence[int]) -> None:
        with self._lock:
            for slot in slots:
                entry = self._by_slot.get(slot) if slot != BASE_SLOT else None
                if entry is None:
                    continue
                entry.users -= 1
                if entry.users == 0 and entry.removed:
                    self._evict(entry)

    def prefetch(self, name: str | None) -> None:
        """Loads `name` now (a request for it is queued) if a slot can be had without
        disturbing running rows; errors surface here, before the request is queued."""
        if name is None:
            return
        with self._lock:
            if self._resident_slot(name) is None and self.fits([name]):
                self._slot_of(name)

    def _resident_slot(self, name: str) -> int | None:
        entry = self._entries.get(name)
        return None if entry is None else entry.slot

    def _slot_of(self, name: str | None) -> int:
        if name is None:
            return BASE_SLOT
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownAdapter(name)
        if entry.files is None:
            raise AdapterError(name, entry.error or "failed")
        entry.last_used = time.monotonic()
        if entry.slot is None:
            self._load(entry, entry.files)
        assert entry.slot is not None
        return entry.slot

    def _load(self, entry: _Entry, files: AdapterFiles) -> None:
        slot = self._free.pop(0) if self._free else self._evict_lru()
        started = time.perf_counter()
        try:
            weights = files.load(self.dtype, self._device)
        except Exception as exc:
            self._free.insert(0, slot)
            entry.files, entry.error = None, f"cannot load {files.folder}: {exc}"
            raise AdapterError(entry.spec.name, entry.error) from None
        self._layers.update(wrap_linears(self.model, list(weights), self.rows, self.dtype))
        for layer in self._layers.values():  # any row's slot must index every layer's stack
            layer.reserve(self.capacity + 1)  # at once: growing per load copies every stack
        for module, (a, b) in weights.items():
            self._layers[module].put(slot, a, b)
        entry.slot, entry.loads = slot, entry.loads + 1
        entry.last_load_s = time.perf_counter() - started
        self._by_slot[slot] = entry
        log.info("adapter %r resident in slot %d (%.1f ms)", entry.spec.name, slot,
                 entry.last_load_s * 1e3)  # fmt: skip

    def _evict_lru(self) -> int:
        idle = [e for e in self._by_slot.values() if e.users == 0]
        victim = min(idle, key=lambda e: e.last_used)
        slot = victim.slot
        assert slot is not None
        self._evict(victim)
        return self._free.pop(self._free.index(slot))

    def _evict(self, entry: _Entry) -> None:
        if entry.slot is None:
            return
        for layer in self._layers.values():
            layer.clear(entry.slot)
        del self._by_slot[entry.slot]
        self._free.append(entry.slot)
        entry.slot = None

    # -- what /v1/models and the profiler see --

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._describe(entry) for entry in self._entries.values()]

    def _describe(self, entry: _Entry) -> dict[str, Any]:
        files = entry.files
        return {
            "name": entry.spec.name,
            "source": entry.spec.source,
            "state": str(entry.state),
            "error": entry.error,
            "rank": None if files is None else files.rank,
            "bytes": None if files is None else files.nbytes,
            "resident_bytes": None if files is None else files.numel * self._itemsize,
            "target_modules": None if files is None else sorted(files.modules),
            "loads": entry.loads,
            "last_load_ms": None if entry.last_load_s is None else entry.last_load_s * 1e3,
        }

    def resident_bytes(self) -> int:
        """Bytes the stacked adapter weights take (every slot's, padding included)."""
        with self._lock:
            return sum(layer.stack_bytes() for layer in self._layers.values())

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)


@contextlib.contextmanager
def adapter_rows(
    manager: AdapterManager | None, names: Sequence[str | None], device: torch.device
) -> Iterator[None]:
    """Pins and sets each row's adapter slot around one forward (nothing without adapters)."""
    if manager is None:
        if any(name is not None for name in names):
            raise InputError("this model has no adapters attached")
        yield
        return
    slots = manager.acquire(names)
    try:
        with manager.rows.use(slots, device):
            yield
    finally:
        manager.release(slots)


def prefetch_adapter(engine: object, name: str) -> None:
    """Loads adapter `name` of `engine` ahead of its request's turn (engine thread)."""
    manager = getattr(engine, "adapters", None)
    if manager is not None:
        manager.prefetch(name)
