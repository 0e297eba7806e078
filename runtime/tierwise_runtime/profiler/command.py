"""The `tierwise-runtime profile` subcommand: arguments, output files, one-line errors."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from tierwise_operator.api import Precision, TierKind
from tierwise_operator.api.profile_codec import ProfileTooLarge, encode

from .evalset import EvalSetError, load_eval_set
from .progress import Progress
from .timing import TimingPolicy


def _split(raw: str, flag: str) -> list[str]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"{flag}: give at least one value")
    return parts


def _enum_list(kind: type[StrEnum], flag: str) -> Callable[[str], tuple[StrEnum, ...]]:
    def parse(raw: str) -> tuple[StrEnum, ...]:
        try:
            return tuple(kind(part) for part in _split(raw, flag))
        except ValueError as exc:
            allowed = ", ".join(m.value for m in kind)
            raise argparse.ArgumentTypeError(f"{flag}: {exc} (choose from {allowed})") from None

    return parse


def _int_list(flag: str) -> Callable[[str], tuple[int, ...]]:
    def parse(raw: str) -> tuple[int, ...]:
        try:
            values = tuple(int(part) for part in _split(raw, flag))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: {raw!r} is not a list of integers") from None
        if any(v < 1 for v in values):
            raise argparse.ArgumentTypeError(f"{flag}: batch sizes must be at least 1")
        return values

    return parse


def _variant(raw: str) -> tuple[str, str]:
    name, sep, uri = raw.partition("=")
    if not sep or not name or not uri:
        raise argparse.ArgumentTypeError(f"--variant {raw!r}: expected NAME=URI")
    return name, uri


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "profile",
        help="measure every precision x tier of a model against its fp32 reference",
        description="Measure weight bytes, load time, peak memory, latency percentiles, "
        "throughput and accuracy delta of each candidate; write a ModelProfile.",
    )
    parser.add_argument("--model", required=True, help="model URI (file://, pvc://, builtin://)")
    parser.add_argument(
        "--variant",
        action="append",
        type=_variant,
        default=[],
        metavar="NAME=URI",
        help="another checkpoint of the service (repeatable)",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        type=_variant,
        default=[],
        metavar="NAME=URI",
        help="a LoRA adapter of the model (repeatable): bytes, load, mixed batches, accuracy",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda measures the gpu tier)")
    parser.add_argument(
        "--precisions",
        type=_enum_list(Precision, "--precisions"),
        default=tuple(Precision),
        help="comma-separated (default: all)",
    )
    parser.add_argument(
        "--tiers",
        type=_enum_list(TierKind, "--tiers"),
        default=None,
        help="comma-separated (default: cpu,offload on cpu; gpu on cuda)",
    )
    parser.add_argument("--batch-sizes", type=_int_list("--batch-sizes"), default=(1, 8, 32))
    parser.add_argument("--eval", help='JSON lines {"text": ...} (default: the bundled set)')
    parser.add_argument("--eval-limit", type=int, help="use only the first N eval texts")
    parser.add_argument("--repeats", type=int, default=100, help="timed runs per batch size")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per batch size")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=8.0,
        help="seconds per batch size before fewer repeats are accepted",
    )
    parser.add_argument("--group-size", type=int, help="int4 group size (default 128)")
    parser.add_argument("--offload-dir", type=Path, help="where offload candidates map weights")
    parser.add_argument("--out", type=Path, help="write the full profile JSON here")
    parser.add_argument(
        "--termination-log",
        type=Path,
        help="write the compact profile here (Kubernetes termination message)",
    )
    parser.set_defaults(run=run)


def _fail(message: str, code: int = 2, termination_log: Path | None = None) -> int:
    print(f"tierwise-runtime profile: {message}", file=sys.stderr)
    if termination_log is not None:
        # The operator shows this as the reason the profile failed.
        termination_log.write_text(message[:4000])
    return code


def run(args: argparse.Namespace) -> int:
    # torch loads only for the commands that use it.
    from ..errors import LoadError  # noqa: PLC0415
    from ..loader import load_engine  # noqa: PLC0415
    from ..sources import checkpoint_digest  # noqa: PLC0415
    from .run import ProfileRequest, candidates, profile_model  # noqa: PLC0415

    log = args.termination_log
    if args.device not in {"cpu", "cuda"} and not args.device.startswith("cuda:"):
        return _fail(f"--device {args.device!r}: expected cpu or cuda", termination_log=log)
    try:
        eval_set = load_eval_set(args.eval, args.eval_limit)
    except EvalSetError as exc:
        return _fail(str(exc), termination_log=log)
    with tempfile.TemporaryDirectory(prefix="tierwise-offload-") as scratch:
        request = ProfileRequest(
            model_uri=args.model,
            variants=dict(args.variant),
            adapters=dict(args.adapter),
            device=args.device,
            precisions=args.precisions,
            tiers=args.tiers,
            batch_sizes=args.batch_sizes,
            timing=TimingPolicy(
                warmup=args.warmup,
                repeats=args.repeats,
                min_repeats=min(20, args.repeats),
                budget_seconds=args.time_budget,
            ),
            offload_dir=args.offload_dir or Path(scratch),
            group_size=args.group_size,
        )
        adapter_steps = len(request.precisions) if request.adapters else 0
        progress = Progress(len(candidates(request)) + adapter_steps)
        try:
            profile = profile_model(
                request,
                eval_set,
                load_engine,
                progress,
                digest=checkpoint_digest(args.model),
            )
        except (LoadError, OSError, ValueError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return _fail(message, termination_log=log)
    if args.out:
        args.out.write_text(profile.model_dump_json(by_alias=True, exclude_none=True, indent=2))
    if args.termination_log:
        try:
            args.termination_log.write_text(encode(profile))
        except ProfileTooLarge as exc:
            return _fail(str(exc), termination_log=log)
    failed = [c for c in profile.candidates if c.error]
    if failed and len(failed) == len(profile.candidates):
        return _fail(f"every candidate failed; first: {failed[0].error}", 1, log)
    return 0
