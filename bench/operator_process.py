"""`tierwise run` as a child process: start it, wait until it watches, read its memory and CPU."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

RECONCILE_METRIC = "tierwise_operator_reconcile_duration_seconds"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Reconciles:
    """The operator's own reconcile histogram, by trigger: how many and how long in total."""

    count: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, exposition: str) -> Reconciles:
        found = cls()
        for family in text_string_to_metric_families(exposition):
            if family.name != RECONCILE_METRIC:
                continue
            for sample in family.samples:
                trigger = sample.labels.get("trigger", "")
                if sample.name.endswith("_count"):
                    found.count[trigger] = int(sample.value)
                elif sample.name.endswith("_sum"):
                    found.seconds[trigger] = sample.value
        return found


class OperatorProcess:
    """One `tierwise run -n NAMESPACE` against the cluster in `kubeconfig`, logging to `log`."""

    def __init__(self, kubeconfig: Path, namespace: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.command = [sys.executable, "-m", "tierwise_operator.cli", "run",
                        "--namespace", namespace, "--port", str(self.port)]  # fmt: skip
        self.overrides = {"KUBECONFIG": str(kubeconfig), **env}
        # Settings come from the benchmark alone, never from the caller's TIERWISE_* variables.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TIERWISE_")}
        self.env = inherited | self.overrides
        self.log = log
        self._popen: subprocess.Popen[bytes] | None = None
        self._process: psutil.Process | None = None
        self._session: aiohttp.ClientSession | None = None

    def shown(self) -> str:
        """The command line as a shell would take it."""
        env = " ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"{env} {' '.join(self.command)}"

    @contextlib.asynccontextmanager
    async def running(self, ready_timeout: float = 60.0) -> AsyncIterator[OperatorProcess]:
        """Start it, wait until /healthz says it watches, and stop it on exit."""
        with self.log.open("wb") as log:
            self._popen = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
            self._process = psutil.Process(self._popen.pid)
            self._session = aiohttp.ClientSession()
            try:
                await self._wait_ready(ready_timeout)
                yield self
            finally:
                await self._session.close()
                await asyncio.to_thread(self._stop)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(aiohttp.ClientError):
                if await self._get("/healthz") is not None:
                    return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the operator was not ready after {timeout:.0f} s\n{self.log_tail()}")

    async def _get(self, path: str) -> str | None:
        assert self._session is not None
        url = f"http://127.0.0.1:{self.port}{path}"
        async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            return await response.text() if response.status == 200 else None

    def _stop(self) -> None:
        assert self._popen is not None
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGINT)  # kopf runs its cleanup handlers
            try:
                self._popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()

    def check_alive(self) -> None:
        assert self._popen is not None
        if self._popen.poll() is not None:
            raise RuntimeError(
                f"the operator exited with {self._popen.returncode}\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def rss(self) -> int:
        assert self._process is not None
        rss: int = self._process.memory_info().rss
        return rss

    def peak_rss(self) -> int | None:
        """The kernel's high-water mark of the resident set (Linux), None elsewhere."""
        assert self._process is not None
        status = Path(f"/proc/{self._process.pid}/status")
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None

    def cpu_seconds(self) -> float:
        """User plus system CPU time the operator has used so far."""
        assert self._process is not None
        times = self._process.cpu_times()
        return float(times.user + times.system)

    async def reconciles(self) -> Reconciles:
        text = await self._get("/metrics")
        if text is None:
            raise RuntimeError("the operator's /metrics did not answer 200")
        return Reconciles.parse(text)


class RssSampler:
    """The operator's RSS every `interval` seconds while running; `peak` is the largest seen."""

    def __init__(self, process: OperatorProcess, interval: float) -> None:
        self.process = process
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)

    def sample(self) -> int:
        rss = self.process.rss()
        self.samples.append((time.perf_counter(), rss))
        return rss

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.sample()
            await asyncio.sleep(self.interval)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RssSampler]:
        self._task = asyncio.create_task(self._loop())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
