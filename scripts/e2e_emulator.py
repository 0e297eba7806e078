"""Run the e2e suite against the in-process API emulator, to check the suite without a cluster.

    python scripts/e2e_emulator.py [--port N] [-- PYTEST ARGS]   # serve, run `pytest e2e`, stop
    python scripts/e2e_emulator.py -- --in-cluster                # the operator as a "pod"
    python scripts/e2e_emulator.py --serve                        # serve until Ctrl-C

The emulator has one schedulable node. Its kubelet makes every pod Ready
without running it (so the Ready test runs, with --runtime-image set to the
default image), except the operator's own pods (--in-cluster), which it runs
as local `tierwise` processes with the pod's args and env. There is no RBAC
enforcement and no access review: those tests skip, saying so. Needs the
`local` extra (kmock) and kubectl on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from tierwise_operator.emulator import Cluster, FakeKubelet
from tierwise_operator.emulator.controllers.nodes import NodeSpec
from tierwise_operator.emulator.kubelet import PodHandle
from tierwise_operator.settings import Settings

REPO = Path(__file__).resolve().parent.parent
NODE = NodeSpec("e2e-worker", allocatable={"cpu": "8", "memory": "16Gi", "pods": "110"})
OPERATOR_LABEL = ("app.kubernetes.io/name", "tierwise-operator")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorPodKubelet:
    """Fakes every pod except the operator's, which run as local `tierwise` processes."""

    def __init__(self, logs: Path) -> None:
        self.fake = FakeKubelet(delay=0.2)
        self.logs = logs
        self.kubeconfig: Path | None = None
        self.processes: dict[tuple[str, str], asyncio.subprocess.Process] = {}
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def start(self, pod: PodHandle) -> None:
        current = pod.pod
        labels = ((current or {}).get("metadata") or {}).get("labels") or {}
        if current is None or labels.get(OPERATOR_LABEL[0]) != OPERATOR_LABEL[1]:
            await self.fake.start(pod)
            return
        container = current["spec"]["containers"][0]
        port = free_port()
        args = [a for a in container.get("args", []) if not a.startswith("--port")]
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        with (self.logs / f"{pod.name}.log").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tierwise_operator.cli",
                *args,
                f"--port={port}",
                env={**os.environ, **env, "KUBECONFIG": str(self.kubeconfig)},
                stdout=log,
                stderr=log,
            )
        key = (pod.namespace, pod.name)
        self.processes[key] = process
        pod.running(ready=False)
        self.tasks[key] = asyncio.create_task(self._serve(pod, process, port))

    async def _serve(self, pod: PodHandle, process: asyncio.subprocess.Process, port: int) -> None:
        """Ready once /healthz answers 200 (the Deployment's readiness probe), then wait."""
        async with aiohttp.ClientSession() as session:
            while process.returncode is None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            pod.running(ready=True)
                            break
                await asyncio.sleep(0.3)
        code = await process.wait()
        if pod.pod is not None:
            pod.crashed(exit_code=code, reason="Error", message=f"tierwise exited {code}")

    async def stop(self, pod: PodHandle) -> None:
        key = (pod.namespace, pod.name)
        process = self.processes.pop(key, None)
        if process is None:
            await self.fake.stop(pod)
            return
        task = self.tasks.pop(key)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def close(self) -> None:
        for key in list(self.processes):
            await self.stop(_Stopped(*key))
        await self.fake.close()


class _Stopped(PodHandle):
    """A handle for stopping a process at shutdown, when its pod no longer matters."""

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name

    @property
    def pod(self) -> dict[str, Any] | None:
        return None


async def main(port: int, serve: bool, pytest_args: list[str]) -> int:
    # SIGTERM unwinds like Ctrl-C, so the operator processes this kubelet started stop too.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with tempfile.TemporaryDirectory(prefix="tierwise-e2e-") as tmp:
        kubelet = OperatorPodKubelet(Path(tmp))
        async with Cluster.start(port=port or None, nodes=(NODE,), kubelet=kubelet) as cluster:
            kubelet.kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
            print(f"emulator at {cluster.url}; KUBECONFIG={kubelet.kubeconfig}", flush=True)
            if serve:
                await asyncio.Event().wait()
            command = [
                sys.executable,
                "-m",
                "pytest",
                "e2e",
                f"--runtime-image={Settings().runtime_image}",
                *pytest_args,
            ]
            env = {**os.environ, "KUBECONFIG": str(kubelet.kubeconfig)}
            process = await asyncio.create_subprocess_exec(*command, cwd=REPO, env=env)
            code = await process.wait()
        if code not in (0, 5):
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- operator pod {log.stem} (last lines) ---")
                print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to serve on (default: free)")
    parser.add_argument("--serve", action="store_true", help="only serve, until Ctrl-C")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(args.port, args.serve, args.pytest_args)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
