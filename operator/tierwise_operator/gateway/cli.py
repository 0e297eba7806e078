"""`tierwise gateway`: flags and the entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .config import GatewaySettings
from .keys import KeysError
from .run import GatewayOptions, serve_forever


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = GatewaySettings()
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--server", help="API server URL without auth (default: kubeconfig)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster or ~/.kube)")
    parser.add_argument(
        "-n", "--namespace", action="append", default=[],
        help="serve the models of this namespace (repeatable; default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--keys-file", type=Path,
        help="API keys and the models each may call (YAML; see docs/gateway.md); default: open",
    )  # fmt: skip
    parser.add_argument(
        "--wait",
        type=float,
        default=d.wait_s,
        help=f"seconds a request waits for a ready replica (default {d.wait_s:g})",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help=f"requests per model waiting at once (default {d.max_queue})",
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=d.max_pending,
        help=f"requests per model admitted at once (default {d.max_pending})",
    )
    parser.add_argument(
        "--retry-after",
        type=int,
        default=d.retry_after_s,
        help="Retry-After seconds on the gateway's own 503s",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def options_from(args: argparse.Namespace) -> GatewayOptions:
    settings = GatewaySettings(
        wait_s=args.wait, max_queue=args.max_queue, max_pending=args.max_pending,
        retry_after_s=args.retry_after,
    )  # fmt: skip
    return GatewayOptions(
        host=args.host, port=args.port, server=args.server, kubeconfig=args.kubeconfig,
        namespaces=tuple(args.namespace), keys_file=args.keys_file, settings=settings,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )  # fmt: skip
    if args.wait <= 0 or args.max_queue < 0 or args.max_pending < 1:
        print(
            "tierwise gateway: --wait must be > 0, --max-queue >= 0, --max-pending >= 1",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(serve_forever(options_from(args)))
    except KeysError as exc:
        print(f"tierwise gateway: {exc}", file=sys.stderr)
        return 2
    return 0
