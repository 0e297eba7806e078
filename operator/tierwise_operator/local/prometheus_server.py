"""Start a real Prometheus on 127.0.0.1 scraping given targets (for local mode and the tests)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml


@dataclass(frozen=True)
class ScrapeTarget:
    """One `host:port` to scrape, with the labels Prometheus attaches to its series."""

    address: str
    labels: dict[str, str] = field(default_factory=dict)
    job: str = "tierwise"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    """A Prometheus process with its own config and TSDB in a temporary directory."""

    def __init__(
        self,
        targets: list[ScrapeTarget],
        scrape_interval: str = "1s",
        binary: str | None = None,
        file_sd_job: str | None = None,
    ) -> None:
        found = binary or shutil.which("prometheus")
        if not found:
            raise FileNotFoundError(
                "prometheus is not installed (Debian: apt-get install prometheus)"
            )
        self.binary = found
        self.targets = targets
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="tierwise-prometheus-"))
        self._process: subprocess.Popen[bytes] | None = None
        self.file_sd_job = file_sd_job
        self.file_sd = self._dir / "targets.json"
        """Targets that come and go (runtime pods): rewrite with `set_file_targets`."""

    def config(self) -> dict[str, object]:
        jobs: dict[str, list[dict[str, object]]] = {}
        for target in self.targets:
            jobs.setdefault(target.job, []).append(
                {"targets": [target.address], "labels": target.labels}
            )
        scrape_configs: list[dict[str, object]] = [
            {"job_name": job, "scrape_interval": self.scrape_interval, "static_configs": groups}
            for job, groups in jobs.items()
        ]
        if self.file_sd_job:
            scrape_configs.append(
                {
                    "job_name": self.file_sd_job,
                    "scrape_interval": self.scrape_interval,
                    "file_sd_configs": [{"files": [str(self.file_sd)], "refresh_interval": "1s"}],
                }
            )
        return {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": "5s"},
            "scrape_configs": scrape_configs,
        }

    def set_file_targets(self, targets: list[ScrapeTarget]) -> None:
        """Replace the file-discovered targets (written atomically; Prometheus re-reads it)."""
        groups = [{"targets": [t.address], "labels": t.labels} for t in targets]
        tmp = self.file_sd.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.file_sd)

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        config = self._dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        if self.file_sd_job and not self.file_sd.exists():
            self.set_file_targets([])
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self._dir / "prometheus.log").open("wb"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"prometheus not ready after {timeout}s: {self.log()[-2000:]}")

    def wait_for_targets(self, timeout: float = 30.0) -> None:
        """Block until every target has been scraped once (discovery starts scraping after ~5s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=2) as resp:
                active = json.load(resp)["data"]["activeTargets"]
            static = [t for t in active if t["labels"].get("job") != self.file_sd_job]
            if len(static) >= len(self.targets) and all(t["health"] == "up" for t in static):
                return
            time.sleep(0.25)
        raise TimeoutError(f"targets not up after {timeout}s: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self._dir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
