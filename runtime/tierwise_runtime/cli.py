"""The `tierwise-runtime` command line; torch and the server load only inside a command.

Each subcommand is one function registered with `@subcommand`: it adds its
parser and sets `run` (a function of the parsed arguments returning the exit
status). A new subcommand is one more such function.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from tierwise_operator.api.enums import Precision

log = logging.getLogger("tierwise_runtime")

SubParsers = Any  # argparse's _SubParsersAction is private
AddSubcommand = Callable[[SubParsers], None]
#: The subcommands, in the order `--help` lists them.
SUBCOMMANDS: list[AddSubcommand] = []

_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
T = TypeVar("T")


def subcommand(add: AddSubcommand) -> AddSubcommand:
    SUBCOMMANDS.append(add)
    return add


class _Parser(argparse.ArgumentParser):
    """Reports bad arguments in one line (the usage is in --help) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tierwise-runtime",
        description="Serve and profile a model at a chosen precision on GPU, CPU or offload.",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        status: int = args.run(args)
    except (ImportError, OSError, ValueError) as exc:
        print(f"tierwise-runtime {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return status


# -- serve ---------------------------------------------------------------------


@subcommand
def add_serve(sub: SubParsers) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over OpenAI-compatible HTTP",
        description="Load a model, warm it up and serve /v1/embeddings or /v1/completions.",
    )
    p.add_argument(
        "--model", required=True, help="file:///path, pvc://claim/path or builtin://name"
    )
    p.add_argument("--precision", default="fp32", choices=[str(p) for p in Precision])
    p.add_argument("--device", default="cpu", type=_device, help="cpu, cuda or cuda:N")
    p.add_argument("--offload-dir", type=Path, help="memory-map the weights from this directory")
    p.add_argument("--group-size", type=_positive, help="int8/int4 scale group size")
    p.add_argument(
        "--int4-calibration",
        choices=["gptq", "rtn"],
        help="int4 codes: gptq (fitted on bundled calibration texts; the default on gpu and "
        "cpu) or rtn (round-to-nearest; the only choice with --offload-dir)",
    )
    p.add_argument("--name", help="the model id clients pass (default: from the model)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on")
    p.add_argument("--port", default=8000, type=_port)
    p.add_argument(
        "--max-batch",
        default=32,
        type=_positive,
        help="most texts per engine call; most sequences decoding at once",
    )
    p.add_argument("--max-wait-ms", default=5.0, type=_non_negative, help="longest batching wait")
    p.add_argument("--max-queue", default=256, type=_positive, help="most items waiting")
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's)")
    p.add_argument("--drain-timeout", default=30.0, type=_non_negative, help="seconds, on SIGTERM")
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from .batching import BatchLimits
    from .serve_config import ServeConfig
    from .server import serve

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    from .loader import load_engine

    config = ServeConfig(
        host=args.host,
        port=args.port,
        limits=BatchLimits(args.max_batch, args.max_wait_ms / 1000, args.max_queue),
        drain_timeout_s=args.drain_timeout,
    )

    def load() -> Any:
        return load_engine(
            args.model,
            args.precision,
            device=args.device,
            offload_dir=args.offload_dir,
            group_size=args.group_size,
            name=args.name,
            **({"calibration": args.int4_calibration} if args.int4_calibration else {}),
        )

    return serve(load, config)


# -- profile -------------------------------------------------------------------


@subcommand
def add_profile(sub: SubParsers) -> None:
    from .profiler.command import add_parser

    add_parser(sub)


# -- argument types ------------------------------------------------------------


def _device(value: str) -> str:
    if not _DEVICE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not cpu, cuda or cuda:N")
    return value


def _positive(value: str) -> int:
    number = _parse(int, value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _port(value: str) -> int:
    number = _parse(int, value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return number


def _non_negative(value: str) -> float:
    number = _parse(float, value)
    if not number >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{value} is not a non-negative number")
    return number


def _parse(kind: Callable[[str], T], value: str) -> T:
    try:
        return kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


if __name__ == "__main__":
    sys.exit(main())
