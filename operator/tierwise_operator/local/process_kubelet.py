"""A kubelet for local mode: each pod's container runs as a process on its own loopback IP.

The runtime image's entrypoint is `tierwise-runtime`, so a pod's args run as
`python -m tierwise_runtime.cli <args>` with the container's env. Every pod
gets an address 127.0.0.N (all of 127/8 is loopback on Linux), so ports stay
as the pod spec says. Paths the pod would see through volumes (the offload
hostPath, /tmp, the termination log) are mapped into a work directory.
Readiness follows the container's readinessProbe; a serving process that
exits is restarted with back-off, as restartPolicy Always wants.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..emulator.kubelet import PodHandle

log = logging.getLogger(__name__)

TERMINATION_LOG = "/dev/termination-log"
PR_SET_PDEATHSIG = 1


@dataclass
class LocalPod:
    """One running pod: its process, address and files."""

    handle: PodHandle
    ip: str
    workdir: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.handle.namespace, self.handle.name


class ProcessKubelet:
    """Runs pods as local processes (see the module docstring)."""

    def __init__(self, workdir: Path, python: str = sys.executable) -> None:
        self.workdir = workdir
        self.python = python
        self.pods: dict[tuple[str, str], LocalPod] = {}
        self._free_ips = [f"127.0.0.{n}" for n in range(2, 255)]

    # -- the Kubelet interface --------------------------------------------------

    async def start(self, pod: PodHandle) -> None:
        manifest = pod.pod
        if manifest is None:
            return
        ip = self._free_ips.pop(0)
        pod.ip = ip
        folder = self.workdir / "pods" / f"{pod.namespace}.{pod.name}"
        folder.mkdir(parents=True, exist_ok=True)
        local = LocalPod(
            pod,
            ip,
            folder,
            folder / "container.log",
            labels=dict(manifest["metadata"].get("labels") or {}),
        )
        self.pods[local.key] = local
        local.task = asyncio.create_task(self._run(local, manifest))

    async def stop(self, pod: PodHandle) -> None:
        local = self.pods.pop((pod.namespace, pod.name), None)
        if local is None:
            return
        await self._terminate(local)
        if local.task is not None:
            local.task.cancel()
            await asyncio.gather(local.task, return_exceptions=True)
        self._free_ips.append(local.ip)

    async def close(self) -> None:
        for handle in [p.handle for p in list(self.pods.values())]:
            await self.stop(handle)

    # -- running one pod ----------------------------------------------------------

    async def _run(self, local: LocalPod, manifest: dict[str, Any]) -> None:
        always = manifest["spec"].get("restartPolicy", "Always") == "Always"
        backoff = 1.0
        while True:
            code = await self._run_once(local, manifest, always)
            if not always:
                message = self._termination_message(local)
                local.handle.terminated(exit_code=code, message=message)
                return
            tail = _tail(local.log_path)
            local.handle.crashed(exit_code=code, reason="Error", message=tail)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _run_once(self, local: LocalPod, manifest: dict[str, Any], serving: bool) -> int:
        container = manifest["spec"]["containers"][0]
        argv, env = self._command(local, manifest, container)
        with local.log_path.open("ab") as out:
            local.process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        # Written down so anyone (the tests, a person cleaning up) can find what ran.
        (local.workdir / "pid").write_text(str(local.process.pid))
        local.handle.running(ready=False)
        probe = container.get("readinessProbe") if serving else None
        watcher = asyncio.create_task(self._probe(local, container, probe)) if probe else None
        code = await local.process.wait()
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        return code

    async def _probe(
        self, local: LocalPod, container: dict[str, Any], probe: dict[str, Any]
    ) -> None:
        path = probe.get("httpGet", {}).get("path", "/readyz")
        port = (container.get("ports") or [{}])[0].get("containerPort", 8000)
        url = f"http://{local.ip}:{port}{path}"
        ready = False
        while True:
            now_ready = await asyncio.to_thread(_http_ok, url)
            if now_ready != ready:
                ready = now_ready
                local.handle.running(ready=ready)
            await asyncio.sleep(0.5)

    def _command(
        self, local: LocalPod, manifest: dict[str, Any], container: dict[str, Any]
    ) -> tuple[list[str], dict[str, str]]:
        mapping = self._paths(local, manifest, container)
        args = [_map_path(a, mapping) for a in container.get("args") or []]
        if args[:1] == ["serve"] and "--host" not in args:
            args += ["--host", local.ip]
        env = dict(os.environ)
        env.update(
            {e["name"]: _map_path(e.get("value", ""), mapping) for e in container.get("env") or []}
        )
        env["PYTHONUNBUFFERED"] = "1"
        return [self.python, "-m", "tierwise_runtime.cli", *args], env

    def _paths(
        self, local: LocalPod, manifest: dict[str, Any], container: dict[str, Any]
    ) -> dict[str, str]:
        """Where each path the pod sees through a writable volume lives on this machine."""
        mapping = {TERMINATION_LOG: str(local.workdir / "termination-log")}
        volumes = {v["name"]: v for v in manifest["spec"].get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"], {})
            if mount.get("readOnly") and "hostPath" in volume:
                continue  # a read-only model folder on the node is this machine's folder
            if "hostPath" in volume or "emptyDir" in volume:
                target = local.workdir / "volumes" / mount["name"]
                if "hostPath" in volume:  # shared by every pod on the node, as a hostPath is
                    target = self.workdir / "host" / volume["hostPath"]["path"].strip("/")
                target.mkdir(parents=True, exist_ok=True)
                mapping[mount["mountPath"]] = str(target)
        return mapping

    def _termination_message(self, local: LocalPod) -> str:
        path = local.workdir / "termination-log"
        return path.read_text()[:4096] if path.exists() else ""

    async def _terminate(self, local: LocalPod) -> None:
        """SIGTERM, then SIGKILL after the pod's grace period, as the kubelet does."""
        process = local.process
        if process is None or process.returncode is not None:
            return
        grace = (local.handle.pod or {}).get("spec", {}).get("terminationGracePeriodSeconds", 30)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def ready_endpoints(self, namespace: str, model: str, port: int = 8000) -> list[str]:
        """Base URLs of the model's serving pods that pass readiness now (a Service's view)."""
        urls = []
        for local in self.pods.values():
            pod = local.handle.pod or {}
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
            terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
            labels = local.labels
            if (
                local.handle.namespace == namespace
                and labels.get("tierwise.dev/model") == model
                and labels.get("app.kubernetes.io/component") == "serving"
                and ready
                and not terminating
            ):
                urls.append(f"http://{local.ip}:{port}")
        return sorted(urls)

    def log_of(self, namespace: str, name_prefix: str) -> Path | None:
        """The container log of the newest pod whose name starts with `name_prefix`."""
        matches = [
            p
            for p in self.pods.values()
            if p.handle.namespace == namespace and p.handle.name.startswith(name_prefix)
        ]
        return matches[-1].log_path if matches else None


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the local-mode process dies, however it dies."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _map_path(value: str, mapping: dict[str, str]) -> str:
    for inside, outside in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        if value == inside or value.startswith(inside + "/"):
            return outside + value[len(inside) :]
    return value


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _tail(path: Path, lines: int = 3) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])[-1000:]
