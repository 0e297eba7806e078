"""The `tierwise-runtime` command line; torch and the server load only inside a command.

Each subcommand is one function registered with `@subcommand`: it adds its
parser and sets `run` (a function of the parsed arguments returning the exit
status). A new subcommand is one more such function.
"""

from __future__ import annotations

import argparse
import logging
import os
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
#: A file holding the API key the server requires (a Kubernetes Secret mounted as a file).
API_KEY_FILE_ENV = "TIERWISE_API_KEY_FILE"
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
    p.add_argument(
        "--adapters",
        type=Path,
        help='LoRA adapters list ({"adapters": [{"name", "source"}]}), re-read while serving',
    )
    p.add_argument("--max-adapters", default=4, type=_positive, help="most adapters resident")
    p.add_argument("--adapter-dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--adapters-poll", default=5.0, type=_non_negative, help="seconds between reads")
    p.add_argument(
        "--max-bytes-in-flight",
        default=64 * 2**20,
        type=_positive,
        help="most request-body bytes held at once across requests (503 beyond)",
    )
    p.add_argument("--header-timeout", default=15.0, type=_positive_float, help="seconds")
    p.add_argument("--body-timeout", default=30.0, type=_positive_float, help="seconds")
    p.add_argument(
        "--engine-call-limit",
        default=60.0,
        type=_positive_float,
        help="seconds one engine call may run before /readyz fails",
    )
    p.add_argument(
        "--api-key-file",
        type=Path,
        default=os.environ.get(API_KEY_FILE_ENV) or None,
        help=f"require this key as a bearer token (default: ${API_KEY_FILE_ENV})",
    )
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
        adapters_file=args.adapters,
        adapters_poll_s=args.adapters_poll,
        max_bytes_in_flight=args.max_bytes_in_flight,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        engine_call_limit_s=args.engine_call_limit,
        api_key=read_api_key(args.api_key_file) if args.api_key_file else None,
    )

    def load() -> Any:
        engine = load_engine(
            args.model,
            args.precision,
            device=args.device,
            offload_dir=args.offload_dir,
            group_size=args.group_size,
            name=args.name,
            **({"calibration": args.int4_calibration} if args.int4_calibration else {}),
        )
        if args.adapters is not None:
            from .adapters.attach import ADAPTER_DTYPES, attach_adapters
            from .adapters.listing import read_adapter_list

            specs = read_adapter_list(args.adapters)
            dtype = ADAPTER_DTYPES[args.adapter_dtype]
            attach_adapters(engine, specs, capacity=args.max_adapters, dtype=dtype)
        return engine

    return serve(load, config)


def read_api_key(path: Path) -> str:
    """The key in a file (a mounted Secret): its text without surrounding whitespace."""
    key = Path(path).read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"the API key file {path} is empty")
    return key


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


def _positive_float(value: str) -> float:
    number = _parse(float, value)
    if not number > 0 or number == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def _parse(kind: Callable[[str], T], value: str) -> T:
    try:
        return kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


if __name__ == "__main__":
    sys.exit(main())
