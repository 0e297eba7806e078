"""A runtime server process around a fake engine, named and placed as a pod's would be.

python -m tests.gateway.replica_process embed|generate --name NAME --host IP --port PORT
    [--delay SECONDS] [--max-queue N]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from tierwise_runtime.batching import BatchLimits
from tierwise_runtime.engine import Engine
from tierwise_runtime.serve_config import ServeConfig
from tierwise_runtime.server import serve

from ..runtime_serve.fakes import FakeEmbeddingEngine, FakeGenerationEngine


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["embed", "generate"])
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per engine call/step")
    parser.add_argument("--max-queue", type=int, default=256)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("tests.fake_engine").setLevel(logging.WARNING)
    engine: Engine
    if args.kind == "embed":
        fake: FakeEmbeddingEngine | FakeGenerationEngine = FakeEmbeddingEngine(delay_s=args.delay)
    else:
        fake = FakeGenerationEngine(delay_s=args.delay, max_tokens=256)
    fake.info = dataclasses.replace(fake.info, model_name=args.name)
    engine = fake
    config = ServeConfig(
        host=args.host, port=args.port, drain_timeout_s=20,
        limits=BatchLimits(max_queue=args.max_queue),
    )  # fmt: skip
    return serve(lambda: engine, config)


if __name__ == "__main__":
    sys.exit(main())
