"""Continuous vs static batching of completions, side by side on the same engine and the
same seeded arrivals: request latency (short and long requests), time to first token,
and tokens per second. One command; prints the ratios.

    PYTHONPATH=operator:runtime python bench/continuous.py            # SmolLM2-135M fp32, CPU
    PYTHONPATH=operator:runtime python bench/continuous.py --quick    # fewer requests

The workload mixes long requests (`--long-tokens`) with short ones (`--short-tokens`)
arriving as a Poisson process. Both modes run the server's CompletionService (batcher,
engine thread, text streaming) on one engine; "static" hides the engine's running
batch, so prompts decode in groups that end with their longest sequence, as before.
Greedy decoding: both modes generate the same tokens, and the run checks they do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tierwise_runtime.batching import BatchLimits, EngineWorker
from tierwise_runtime.completion_service import CompletionService, Finished, TextDelta
from tierwise_runtime.engine import SamplingParams
from tierwise_runtime.loader import load_engine

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Request:
    at: float
    prompt: str
    params: SamplingParams
    long: bool


@dataclass(frozen=True)
class Done:
    request: Request
    latency: float
    first_token: float
    text: str
    tokens: int


class StaticView:
    """The engine without its running batch: CompletionService falls back to static groups."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        if name == "session":
            raise AttributeError(name)
        return getattr(self._engine, name)


def workload(args: argparse.Namespace, texts: list[str]) -> list[Request]:
    rng = random.Random(args.seed)
    at, out = 0.0, []
    for _ in range(args.requests):
        at += rng.expovariate(args.rate)
        long = rng.random() < args.long_share
        tokens = args.long_tokens if long else args.short_tokens
        params = SamplingParams(max_tokens=tokens, temperature=0)
        out.append(Request(at, rng.choice(texts), params, long))
    return out


async def serve(engine: Any, requests: list[Request], max_batch: int) -> tuple[list[Done], float]:
    worker = EngineWorker()
    limits = BatchLimits(max_batch=max_batch, max_wait_s=0.005, max_queue=4096)
    service = CompletionService(engine, worker, limits)
    runner = asyncio.create_task(service.batcher.run())
    start = time.perf_counter()

    async def one(request: Request) -> Done:
        await asyncio.sleep(max(0.0, start + request.at - time.perf_counter()))
        sent = time.perf_counter()
        stream = await service.submit([request.prompt], request.params)
        first, text, tokens = None, [], 0
        async for event in stream:
            if isinstance(event, TextDelta):
                first = first or time.perf_counter()
                text.append(event.text)
            elif isinstance(event, Finished):
                tokens = event.completion_tokens
        end = time.perf_counter()
        return Done(request, end - sent, (first or end) - sent, "".join(text), tokens)

    try:
        done = await asyncio.gather(*(one(r) for r in requests))
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        worker.close()
    return list(done), time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(done: list[Done], wall: float) -> dict[str, float]:
    short = [d.latency for d in done if not d.request.long]
    long = [d.latency for d in done if d.request.long]
    ttft = [d.first_token for d in done]
    return {
        "short p50": pct(short, 50), "short p95": pct(short, 95),
        "long p50": pct(long, 50) if long else math.nan,
        "long p95": pct(long, 95) if long else math.nan,
        "first token p50": pct(ttft, 50), "first token p95": pct(ttft, 95),
        "tokens/s": sum(d.tokens for d in done) / wall, "wall": wall,
        "mean latency": statistics.fmean(d.latency for d in done),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="builtin://smollm2-135m")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rate", type=float, default=3.0, help="arrivals per second")
    parser.add_argument("--long-share", type=float, default=0.25)
    parser.add_argument("--long-tokens", type=int, default=96)
    parser.add_argument("--short-tokens", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="16 requests")
    args = parser.parse_args()
    if args.quick:
        args.requests = 16
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = load_engine(args.model, args.precision)
    eval_set = REPO / "runtime/tierwise_runtime/data/eval_default.jsonl"
    texts = [json.loads(line)["text"][:200] for line in eval_set.read_text().splitlines()]
    requests = workload(args, texts)
    list(engine.generate(engine.tokenize(["warm up"]), [SamplingParams(max_tokens=4)]))
    print(f"{args.model} {args.precision} on {torch.get_num_threads()} threads; "
          f"{len(requests)} requests at {args.rate:g}/s, {args.long_share:.0%} long "
          f"({args.long_tokens} tokens) and the rest short ({args.short_tokens}); "
          f"max batch {args.max_batch}")  # fmt: skip
    results = {}
    for mode, view in (("static", StaticView(engine)), ("continuous", engine)):
        done, wall = asyncio.run(serve(view, requests, args.max_batch))
        results[mode] = (done, summary(done, wall))
    same = all(a.text == b.text for a, b in zip(results["static"][0], results["continuous"][0],
                                                  strict=True))  # fmt: skip
    print(f"same text from both modes for every request: {same}")
    rows = list(results["static"][1])
    print(f"  {'':<18}{'static':>10}{'continuous':>12}{'static / continuous':>22}")
    for name in rows:
        a, b = results["static"][1][name], results["continuous"][1][name]
        unit = "" if name == "tokens/s" else " s"
        print(f"  {name:<18}{a:>8.2f}{unit:<2}{b:>10.2f}{unit:<2}{a / b:>20.2f}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
