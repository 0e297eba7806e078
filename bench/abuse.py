"""One tenant's abuse, another tenant's latency: a real server process with its limits on
("bounded", the defaults) and off ("unbounded": no bytes-in-flight budget and no text bound
before tokenizing, as the runtime was before), side by side in one run.

    PYTHONPATH=operator:runtime python bench/abuse.py [--bodies 48] [--body-mb 7.6]

For each mode: a victim's completion latency alone; the server's peak RSS (VmHWM) while
`--bodies` concurrent bodies of `--body-mb` MB arrive (each trickles in over ~0.5 s, so
all are in flight together; each names a model the server does not serve, so it is read,
parsed and refused with a 404: the figure is the memory of bodies in flight) and the
victim's latency meanwhile; then the victim's latency while one tenant posts a prompt of
`--body-mb` MB of text (tokenized on the engine thread when unbounded). The model is a
small random Llama (bench-only; the engine's speed is not what is measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
VICTIM = {"model": "bench-llama", "prompt": "w5 w6 w7 w8", "max_tokens": 16, "temperature": 0}


def serve(mode: str, model: str) -> int:
    """The server process (`--serve MODE`): the real app and engine, limits per mode."""
    import logging

    from tierwise_runtime.loader import load_engine
    from tierwise_runtime.serve_config import ServeConfig
    from tierwise_runtime.server import serve as run

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    unbounded: dict[str, Any] = {"max_bytes_in_flight": 2**62, "chars_per_token": 10**9}
    config = ServeConfig(
        host="127.0.0.1", port=int(os.environ["ABUSE_PORT"]), drain_timeout_s=2,
        **(unbounded if mode == "unbounded" else {}),
    )  # fmt: skip
    return run(lambda: load_engine(f"file://{model}", "fp32", name="bench-llama"), config)


@dataclass
class Figures:
    mode: str
    alone_ms: float = 0.0
    flood_ms: float = 0.0
    flood_statuses: dict[int, int] = field(default_factory=dict)
    flood_peak_rss_mb: float = 0.0
    rss_before_mb: float = 0.0
    prompt_ms: float = 0.0
    prompt_status: int = 0


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def _victims(session: aiohttp.ClientSession, url: str, until: asyncio.Event | None,
                   count: int) -> list[float]:  # fmt: skip
    """Victim latencies (ms), one after another: `count` of them, or until `until` is set."""
    out: list[float] = []
    while (until is None and len(out) < count) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        async with session.post(f"{url}/v1/completions", json=VICTIM) as response:
            await response.read()
            assert response.status == 200, response.status
        out.append((time.perf_counter() - started) * 1000)
    return out


async def _trickle(body: bytes, pieces: int = 8, pause_s: float = 0.06) -> Any:
    step = -(-len(body) // pieces)
    for i in range(0, len(body), step):
        yield body[i : i + step]
        await asyncio.sleep(pause_s)


async def _flood(
    session: aiohttp.ClientSession, url: str, bodies: int, size: int
) -> dict[int, int]:
    body = json.dumps({"model": "not-served", "prompt": "w1 " * ((size - 40) // 3)}).encode()

    async def one() -> int:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        try:
            async with session.post(f"{url}/v1/completions", data=_trickle(body),
                                    headers=headers) as response:  # fmt: skip
                await response.read()
                return response.status
        except aiohttp.ClientError:
            return -1  # the server closed the connection on a refused body

    statuses: dict[int, int] = {}
    for status in await asyncio.gather(*(one() for _ in range(bodies))):
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


async def measure(mode: str, url: str, pid: int, args: argparse.Namespace) -> Figures:
    figures = Figures(mode)
    size = int(args.body_mb * 1e6)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        await _victims(session, url, None, 3)  # warm
        figures.alone_ms = statistics.median(await _victims(session, url, None, args.victims))
        figures.rss_before_mb = _peak_rss_mb(pid)
        done = asyncio.Event()
        victims = asyncio.create_task(_victims(session, url, done, 0))
        figures.flood_statuses = await _flood(session, url, args.bodies, size)
        done.set()
        figures.flood_ms = statistics.median(await victims)
        figures.flood_peak_rss_mb = _peak_rss_mb(pid)
        prompt = {"model": "bench-llama", "prompt": "w9 " * (size // 3)}
        done = asyncio.Event()
        victims = asyncio.create_task(_victims(session, url, done, 0))
        await asyncio.sleep(0.05)
        async with session.post(f"{url}/v1/completions", json=prompt) as response:
            await response.read()
            figures.prompt_status = response.status
        done.set()
        figures.prompt_ms = max(await victims)
    return figures


async def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            if process.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server never became ready")


def run_mode(mode: str, model: Path, port: int, args: argparse.Namespace) -> Figures:
    env = os.environ | {"ABUSE_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--model", str(model)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_wait_ready(url, process))
        return asyncio.run(measure(mode, url, process.pid, args))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=48)
    parser.add_argument("--body-mb", type=float, default=7.6)
    parser.add_argument("--victims", type=int, default=10, help="victim requests alone")
    parser.add_argument("--serve", choices=["bounded", "unbounded"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.model)
    from tierwise_runtime.synthetic import write_llama

    with tempfile.TemporaryDirectory() as tmp:
        model = write_llama(Path(tmp) / "llama", vocab=1024, dim=128, layers=2, context=512)
        results = [run_mode(mode, model, 18700 + i, args)
                   for i, mode in enumerate(["unbounded", "bounded"])]  # fmt: skip
    report(results, args)
    return 0


def report(results: list[Figures], args: argparse.Namespace) -> None:
    print(f"{args.bodies} concurrent bodies of {args.body_mb} MB; victim = 16-token completion")
    head = ("mode", "victim alone ms", "victim in flood ms", "peak RSS MB (before)",
            "flood answers", "victim beside a big prompt ms (its answer)")  # fmt: skip
    print(" | ".join(head))
    for f in results:
        print(f"{f.mode} | {f.alone_ms:.1f} | {f.flood_ms:.1f} | {f.flood_peak_rss_mb:.0f} "
              f"({f.rss_before_mb:.0f}) | {f.flood_statuses} | {f.prompt_ms:.0f} "
              f"({f.prompt_status})")  # fmt: skip
    off, on = results
    growth = [f.flood_peak_rss_mb - f.rss_before_mb for f in results]
    print(
        f"peak RSS growth: unbounded {growth[0]:.0f} MB, bounded {growth[1]:.0f} MB, "
        f"{growth[0] / max(1.0, growth[1]):.1f}x"
    )
    print(f"victim latency beside a big prompt, unbounded / bounded: "
          f"{off.prompt_ms / on.prompt_ms:.1f}x")  # fmt: skip
    print(f"victim latency in the flood / alone: unbounded {off.flood_ms / off.alone_ms:.1f}x, "
          f"bounded {on.flood_ms / on.alone_ms:.1f}x")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
