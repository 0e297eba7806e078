"""A real server process around the fake continuous engine, for the drain tests.

python -m tests.security.serve_process --delay SECONDS --drain-timeout SECONDS
"""

from __future__ import annotations

import argparse
import logging
import sys

from tierwise_runtime.serve_config import ServeConfig
from tierwise_runtime.server import serve

from ..runtime_serve.fakes import FakeContinuousEngine


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per decode step")
    parser.add_argument("--drain-timeout", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    engine = FakeContinuousEngine(delay_s=args.delay, max_tokens=256)
    # A body timeout far beyond the drain's: the drain alone must not wait for it.
    config = ServeConfig(
        host="127.0.0.1", port=0, drain_timeout_s=args.drain_timeout, body_timeout_s=300
    )
    return serve(lambda: engine, config)


if __name__ == "__main__":
    sys.exit(main())
