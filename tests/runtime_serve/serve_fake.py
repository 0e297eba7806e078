"""A real server process around a fake engine, for the shutdown tests.

python -m tests.runtime_serve.serve_fake embed|generate [--delay SECONDS]
"""

from __future__ import annotations

import argparse
import logging
import sys

from tierwise_runtime.engine import Engine
from tierwise_runtime.serve_config import ServeConfig
from tierwise_runtime.server import serve

from .fakes import FakeEmbeddingEngine, FakeGenerationEngine


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["embed", "generate"])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per engine call/step")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    engine: Engine
    if args.kind == "embed":
        engine = FakeEmbeddingEngine(delay_s=args.delay)
    else:
        engine = FakeGenerationEngine(delay_s=args.delay)
    return serve(lambda: engine, ServeConfig(host="127.0.0.1", port=0, drain_timeout_s=20))


if __name__ == "__main__":
    sys.exit(main())
