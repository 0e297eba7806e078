"""The gateway hop: added latency against calling the runtime directly, side by side, and the
time from a first request to its answer when the bundled MiniLM wakes from zero.

    .venv/bin/python bench/gateway.py                   # both parts
    .venv/bin/python bench/gateway.py --engine minilm --requests 500 --no-wake

Part 1 starts one runtime server process and one gateway process routing to it, then
sends the same short embedding request alternately to each, one at a time, so machine
noise falls on both equally. `--engine fake` (the default) serves with the tests' fake
embedding engine, so the hop is not lost in the model's own time; `--engine minilm`
serves the bundled all-MiniLM-L6-v2.
Part 2 runs the API emulator, the real operator and runtime pods as local processes
(as `tierwise dev` does), creates the sample embedder at `replicas.min: 0` with its
profile inline, and times a request sent through the gateway while the model is at zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "operator"), str(REPO / "runtime"), str(REPO / "bench")]

MODEL = "ticket-embedder"
BODY = {"model": MODEL, "input": "My invoice was charged twice."}


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} never answered 200")


def serve_gateway(port: int, upstream: str) -> None:
    """The gateway process of part 1: one static route, no Kubernetes."""
    from aiohttp import web

    from tierwise_operator.gateway.app import create_app
    from tierwise_operator.gateway.endpoints import Directory

    async def main() -> None:
        directory = Directory()
        directory.add_model("default", MODEL).set_endpoints([upstream])
        runner = web.AppRunner(create_app(directory), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.asynccontextmanager
async def process(*argv: str) -> AsyncIterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryFile() as log:
        paths = [str(REPO / "operator"), str(REPO / "runtime"), str(REPO)]
        env = os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


def runtime_argv(engine: str, port: int) -> list[str]:
    if engine == "fake":
        return [sys.executable, "-m", "tests.gateway.replica_process", "embed", "--name", MODEL,
                "--port", str(port)]  # fmt: skip
    return [sys.executable, "-m", "tierwise_runtime.cli", "serve",
            "--model", "builtin://all-minilm-l6-v2", "--name", MODEL,
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


async def hop_latency(requests: int, engine: str) -> dict[str, list[float]]:
    runtime_port, gateway_port = free_port(), free_port()
    runtime = f"http://127.0.0.1:{runtime_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    async with (
        process(*runtime_argv(engine, runtime_port)),
        process(sys.executable, __file__, "--serve-gateway", str(gateway_port), runtime),
    ):
        await wait_http(f"{runtime}/readyz")
        await wait_http(f"{gateway}/healthz")
        out: dict[str, list[float]] = {"direct": [], "gateway": []}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for i in range(requests + 100):
                for name, base in (("direct", runtime), ("gateway", gateway))[
                    :: 1 if i % 2 else -1
                ]:
                    started = time.perf_counter()
                    async with session.post(f"{base}/v1/embeddings", json=BODY) as resp:
                        await resp.read()
                        assert resp.status == 200, resp.status
                    if i >= 100:  # the first 100 pairs warm up both paths
                        out[name].append(time.perf_counter() - started)
    return out


async def wake_from_zero(workdir: Path) -> dict[str, Any]:
    import kopf
    import yaml

    from operator_load import model_manifest, profile
    from tierwise_operator.emulator import Cluster
    from tierwise_operator.emulator.kopfrun import run_operator
    from tierwise_operator.gateway.config import GatewaySettings
    from tierwise_operator.gateway.run import GatewayOptions, running
    from tierwise_operator.local.dev import DEV_SETTINGS, local_nodes
    from tierwise_operator.local.process_kubelet import ProcessKubelet
    from tierwise_operator.runner import registry_for
    from tierwise_operator.settings import Settings

    kubelet = ProcessKubelet(workdir)
    doc = model_manifest(0, profile())
    doc["metadata"] = {"name": MODEL, "namespace": "default"}
    doc["spec"]["replicas"] = {"min": 0, "max": 2}
    doc["spec"]["traffic"] = {"headroom": "20%"}
    tiers = list(yaml.safe_load_all((REPO / "deploy/samples/tierclasses.yaml").read_text()))
    async with Cluster.start(
        crds=[REPO / "crds"], objects=[t for t in tiers if t], nodes=local_nodes(), kubelet=kubelet
    ) as cluster:
        registry = registry_for(Settings.from_env(DEV_SETTINGS), server=cluster.url, login=False)
        async with run_operator(cluster.url, registry=registry, memo=kopf.Memo()):
            await cluster.client.create("inferencemodels", doc)
            await cluster.client.wait_for(
                "inferencemodels", MODEL,
                lambda m: (m.get("status") or {}).get("decision") is not None, "default",
                timeout=60,
            )  # fmt: skip
            options = GatewayOptions(host="127.0.0.1", port=0, server=cluster.url,
                                     settings=GatewaySettings(wait_s=120))  # fmt: skip
            async with running(options) as gw, aiohttp.ClientSession() as session:
                while not gw.watcher.synced:
                    await asyncio.sleep(0.05)
                started = time.perf_counter()
                async with session.post(f"{gw.url}/v1/embeddings", json=BODY) as resp:
                    await resp.read()
                    status = resp.status
                woken_s = time.perf_counter() - started
                warm_started = time.perf_counter()
                async with session.post(f"{gw.url}/v1/embeddings", json=BODY) as resp:
                    await resp.read()
                warm_s = time.perf_counter() - warm_started
            model = await cluster.client.get("inferencemodels", MODEL, "default")
        await kubelet.close()
    return {"status": status, "woken_s": woken_s, "warm_s": warm_s,
            "reason": model["status"]["decision"]["reason"]}  # fmt: skip


def report(hop: dict[str, list[float]], engine: str) -> None:
    direct, via = hop["direct"], hop["gateway"]
    print(f"hop latency ({engine} engine), {len(direct)} sequential embedding requests per path,"
          " interleaved:")  # fmt: skip
    print(f"  {'path':<10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in hop.items():
        p50, p99 = percentile(values, 50) * 1e3, percentile(values, 99) * 1e3
        print(f"  {name:<10} {p50:8.2f} {p99:8.2f} {statistics.fmean(values) * 1e3:8.2f}")
    for q in (50, 99):
        added = (percentile(via, q) - percentile(direct, q)) * 1e3
        ratio = percentile(via, q) / percentile(direct, q)
        print(f"  gateway added at p{q}: {added:+.2f} ms ({ratio:.2f}x direct)")


async def main(args: argparse.Namespace) -> int:
    report(await hop_latency(args.requests, args.engine), args.engine)
    if args.wake:
        with tempfile.TemporaryDirectory() as tmp:
            woke = await wake_from_zero(Path(tmp))
        print(f"wake from zero ({MODEL}, MiniLM, through the real operator on the emulator):")
        print(f"  first request answered {woke['status']} after {woke['woken_s']:.2f} s; "
              f"the next one in {woke['warm_s'] * 1e3:.1f} ms")  # fmt: skip
        print(f"  decision: {woke['reason'][:120]}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per path (default 2000)")
    parser.add_argument("--engine", choices=["fake", "minilm"], default="fake")
    parser.add_argument("--no-wake", dest="wake", action="store_false")
    parser.add_argument("--serve-gateway", nargs=2, metavar=("PORT", "UPSTREAM"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parsed = parser.parse_args()
    if parsed.serve_gateway:
        serve_gateway(int(parsed.serve_gateway[0]), parsed.serve_gateway[1])
        sys.exit(0)
    sys.exit(asyncio.run(main(parsed)))
