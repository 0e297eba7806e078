"""How the suite runs the operator: a local `tierwise run` process, or the in-cluster Deployment.

Both offer `restart()` (the restart scenario) and `logs()` (shown when a test fails).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

from .install import OPERATOR_NAME, OPERATOR_NAMESPACE
from .kubectl import Kubectl, eventually

# Fast re-plans and no Prometheus: capacity comes from the Kubernetes API, as on a
# cluster without monitoring, and every test sees a reconcile within seconds.
TEST_SETTINGS = {
    "TIERWISE_PROMETHEUS_URL": "",
    "TIERWISE_REPLAN_INTERVAL": "2s",
    "TIERWISE_TIER_DWELL": "0s",
    "TIERWISE_SCALE_DOWN_STABILIZATION": "0s",
}


class Operator(Protocol):
    def restart(self) -> None: ...

    def logs(self) -> str: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalOperator:
    """`tierwise run --namespace NS` as a child process with this environment's KUBECONFIG."""

    def __init__(self, namespace: str, env: dict[str, str], log_path: Path) -> None:
        self.namespace = namespace
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "tierwise_operator.cli",
            "run",
            "--namespace",
            self.namespace,
            "--port",
            str(self.port),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        eventually(
            self._healthy, "the operator's /healthz (kopf watching)", timeout=60, interval=0.5
        )

    def _healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"tierwise run exited early; its log:\n{self.logs()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Ctrl-C, as a person stops it; kill only if it does not stop within 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-80:])


class InClusterOperator:
    """The Deployment installed from deploy/default, in tierwise-system.

    Its readiness probe is /healthz, which answers 200 once kopf watches, so a
    finished rollout means the new operator is reconciling.
    """

    def __init__(self, k: Kubectl) -> None:
        self.k = k.in_namespace(OPERATOR_NAMESPACE)

    def restart(self) -> None:
        self.k.run("rollout", "restart", f"deployment/{OPERATOR_NAME}")
        self.k.run(
            "rollout", "status", f"deployment/{OPERATOR_NAME}", "--timeout=180s", timeout=200
        )

    def logs(self) -> str:
        result = self.k.run("logs", f"deployment/{OPERATOR_NAME}", "--tail=80", check=False)
        return result.out or result.err
