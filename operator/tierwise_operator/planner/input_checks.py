"""What in a model's spec, profile or the metrics snapshot the planner cannot use, in words.

Problems name what does not exist (a TierClass the spec asks for); warnings name what
was given but ignored. Neither stops planning: a model plans over what exists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..api import InferenceModel, ModelProfile, Task, TierClass
from .candidates import missing_tiers, variant_names
from .snapshot import MetricsSnapshot

_NO_KV = "a text-embedding model keeps no KV cache"
#: How many node names a snapshot warning lists before it only counts them.
_NAMED_NODES = 5


@dataclass(frozen=True)
class InputFindings:
    """One model's problems (it names what does not exist) and warnings (input ignored)."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def model_findings(model: InferenceModel, tiers: Sequence[TierClass]) -> InputFindings:
    """Problems and warnings for one model against the TierClasses that exist."""
    problems = tuple(
        f'spec.tierClasses: no TierClass named "{name}"' for name in missing_tiers(model, tiers)
    )
    where, prof = _profile(model)
    warnings = [] if prof is None else _undeclared_variants(model, where, prof)
    if model.spec.model.task is Task.TEXT_EMBEDDING:
        warnings += _decoder_fields(model, where, prof)
    return InputFindings(problems, tuple(warnings))


def _profile(model: InferenceModel) -> tuple[str, ModelProfile | None]:
    # The same preference as the planner's figures: inline first, else the measured one.
    if model.spec.profile is not None:
        return "spec.profile", model.spec.profile
    return "status.profile", model.status.profile if model.status else None


def _undeclared_variants(model: InferenceModel, where: str, prof: ModelProfile) -> list[str]:
    declared = set(variant_names(model))
    counts = Counter(c.variant for c in prof.candidates if c.variant not in declared)
    return [
        f'{where}: {_entries(n)} of variant "{name}" ignored: it is not in spec.model.variants'
        for name, n in sorted(counts.items())
    ]


def _decoder_fields(model: InferenceModel, where: str, prof: ModelProfile | None) -> list[str]:
    out = []
    if model.spec.model.context_length is not None:
        out.append(f"spec.model.contextLength ignored: {_NO_KV}")
    with_kv = [c for c in prof.candidates if c.kv_cache_bytes_per_token] if prof else []
    if with_kv:
        out.append(f"{where}: kvCacheBytesPerToken of {_entries(len(with_kv))} ignored: {_NO_KV}")
    return out


def _entries(n: int) -> str:
    return "1 entry" if n == 1 else f"{n} entries"


def snapshot_warnings(snapshot: MetricsSnapshot | None, tiers: Sequence[TierClass]) -> list[str]:
    """Nodes of the snapshot whose TierClass does not exist: they offer no room to anyone."""
    if snapshot is None:
        return []
    known = {t.name for t in tiers}
    unknown: dict[str, list[str]] = {}
    for node in snapshot.nodes_by_name:
        if node.tier_class not in known:
            unknown.setdefault(node.tier_class, []).append(node.name)
    out = []
    for tier_class, names in sorted(unknown.items()):
        listed = ", ".join(names[:_NAMED_NODES])
        if len(names) > _NAMED_NODES:
            listed += f" and {len(names) - _NAMED_NODES} more"
        count = "1 node" if len(names) == 1 else f"{len(names)} nodes"
        out.append(
            f'metrics snapshot: {count} of TierClass "{tier_class}" ignored ({listed}): '
            "no such TierClass"
        )
    return out


def condition(findings: InputFindings) -> tuple[bool, str, str]:
    """(status, reason, message) of a condition saying whether every input is used:
    `UnknownTierClass` when the spec names one that does not exist, `InputIgnored` when
    only warnings remain, `AsGiven` otherwise."""
    if findings.problems:
        return False, "UnknownTierClass", "; ".join(findings.problems + findings.warnings)
    if findings.warnings:
        return False, "InputIgnored", "; ".join(findings.warnings)
    return True, "AsGiven", "every input is used"
