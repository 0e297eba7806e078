"""`tierwise run` as a person starts it: a process that logs in with the kubeconfig and watches."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tierwise_operator.emulator import Cluster

from ..conftest import REPO

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _healthy(port: int, process: asyncio.subprocess.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and process.returncode is None:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    return False


async def test_tierwise_run_logs_in_with_the_kubeconfig_and_becomes_healthy(
    tmp_path: Path,
) -> None:
    async with Cluster.start(crds=[REPO / "crds"]) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        port = _free_port()
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "TIERWISE_PROMETHEUS_URL": ""}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tierwise_operator.cli",
            "run",
            "--namespace",
            "default",
            "--port",
            str(port),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            healthy = await _healthy(port, process, timeout=60)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        log = out.decode(errors="replace")
        assert healthy, log
        assert "Activity 'login_via_client' succeeded" in log
        assert process.returncode == 0, log
