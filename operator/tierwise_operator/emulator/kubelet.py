"""The kubelet interface (what happens to a scheduled pod) and a fake kubelet for tests.

A kubelet implements two coroutines and reports through the `PodHandle` it
is given:

    class Kubelet(Protocol):
        async def start(self, pod: PodHandle) -> None  # return once started
        async def stop(self, pod: PodHandle) -> None   # return once stopped

`PodHandle.running(ready=...)`, `.terminated(exit_code=..., message=...)` and
`.crashed(reason=...)` write the pod status as a real kubelet would (phase,
conditions, containerStatuses with state, lastState and restartCount). Local
mode plugs in a kubelet that starts processes; tests use `FakeKubelet`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from . import errors
from .admission import now
from .apiserver import ApiServer


class PodHandle:
    """One pod as its kubelet sees it: the latest object and the status updates it may make."""

    manager = "kubelet"

    def __init__(self, api: ApiServer, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.ip = "127.0.0.1"
        """The pod's IP as status reports it; a kubelet running real processes sets its own."""
        self._pods = api.registry.lookup("pods")

    @property
    def pod(self) -> dict[str, Any] | None:
        """The pod now, or None once it is gone."""
        return self.api.store.get(self._pods, self.namespace, self.name)

    def running(self, *, ready: bool = True) -> None:
        """All containers run; the pod is Ready when `ready`."""
        self._write("Running", ready, lambda c: {"running": {"startedAt": now()}})

    def terminated(self, *, exit_code: int = 0, reason: str = "", message: str = "") -> None:
        """The containers exited. Pods that restart (`Always`) crash-loop instead of finishing."""
        pod = self.pod
        if pod is not None and pod["spec"].get("restartPolicy", "Always") == "Always":
            self.crashed(exit_code=exit_code, reason=reason or "Error", message=message)
            return
        phase = "Succeeded" if exit_code == 0 else "Failed"
        reason = reason or ("Completed" if exit_code == 0 else "Error")
        state = {"terminated": _terminated(exit_code, reason, message)}
        self._write(phase, False, lambda c: state)

    def crashed(
        self,
        *,
        exit_code: int = 1,
        reason: str = "Error",
        message: str = "",
        waiting_reason: str = "CrashLoopBackOff",
    ) -> None:
        """The container died and waits to restart: lastState says why, restartCount grows."""
        last = {"terminated": _terminated(exit_code, reason, message)}
        waiting = {
            "waiting": {
                "reason": waiting_reason,
                "message": "back-off restarting failed container",
            }
        }
        self._write("Running", False, lambda c: waiting, last_state=last, restarted=True)

    def _write(
        self,
        phase: str,
        ready: bool,
        state: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        last_state: dict[str, Any] | None = None,
        restarted: bool = False,
    ) -> None:
        pod = self.pod
        if pod is None or pod.get("status", {}).get("phase") in {"Succeeded", "Failed"}:
            return
        old = {c["name"]: c for c in pod.get("status", {}).get("containerStatuses", [])}
        statuses = []
        for container in pod["spec"].get("containers", []):
            previous = old.get(container["name"], {})
            statuses.append(
                {
                    "name": container["name"],
                    "image": container.get("image", ""),
                    "imageID": "",
                    "containerID": f"emulator://{pod['metadata']['uid'][:8]}-{container['name']}",
                    "ready": ready,
                    "started": phase == "Running" and not restarted,
                    "restartCount": previous.get("restartCount", 0) + int(restarted),
                    "state": state(container),
                    "lastState": last_state or previous.get("lastState", {}),
                }
            )
        pod["status"] = _pod_status(pod, phase, ready, statuses, self.ip)
        with contextlib.suppress(errors.ApiError):
            self.api.update(
                self._pods,
                pod,
                self.namespace,
                self.name,
                subresource="status",
                manager=self.manager,
            )


def _terminated(exit_code: int, reason: str, message: str) -> dict[str, Any]:
    stamp = now()
    out = {"exitCode": exit_code, "reason": reason, "startedAt": stamp, "finishedAt": stamp}
    return {**out, "message": message} if message else out


def _pod_status(
    pod: dict[str, Any], phase: str, ready: bool, statuses: list[dict[str, Any]], ip: str
) -> dict[str, Any]:
    old = pod.get("status") or {}
    stamp = now()
    flags = {"PodScheduled": True, "Initialized": True, "ContainersReady": ready, "Ready": ready}
    before = {c["type"]: c for c in old.get("conditions", [])}
    conditions = []
    for kind, value in flags.items():
        text = str(value)
        since = (
            before[kind]["lastTransitionTime"]
            if before.get(kind, {}).get("status") == text
            else stamp
        )
        conditions.append({"type": kind, "status": text, "lastTransitionTime": since})
    return {
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": old.get("startTime", stamp),
        "containerStatuses": statuses,
        "qosClass": "Burstable",
    }


class Kubelet(Protocol):
    """Runs the pods bound to the emulated nodes."""

    async def start(self, pod: PodHandle) -> None: ...

    async def stop(self, pod: PodHandle) -> None: ...


@dataclasses.dataclass(frozen=True)
class Serve:
    """Run and become Ready after `ready_after` seconds (the default for `Always` pods)."""

    ready_after: float | None = None


@dataclasses.dataclass(frozen=True)
class Exit:
    """Run `after` seconds, then exit (the default for Job pods: code 0, no message)."""

    code: int = 0
    message: str = ""
    reason: str = ""
    after: float | None = None


@dataclasses.dataclass(frozen=True)
class OOMKill:
    """Start, then be OOMKilled `after` seconds later, again and again (CrashLoopBackOff)."""

    after: float | None = None
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Hang:
    """Stay Running and never become Ready (a readiness probe that keeps failing)."""


Behaviour = Serve | Exit | OOMKill | Hang
Decide = Callable[[dict[str, Any]], Behaviour | None]


class FakeKubelet:
    """Runs no processes: pods do what `decide(pod)` says (None: the default behaviour)."""

    def __init__(self, *, delay: float = 0.05, decide: Decide | None = None) -> None:
        self.delay = delay
        self.decide: Decide = decide or (lambda pod: None)
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._handles: dict[tuple[str, str], PodHandle] = {}

    def behaviour(self, pod: dict[str, Any]) -> Behaviour:
        chosen = self.decide(pod)
        if chosen is not None:
            return chosen
        return Serve() if pod["spec"].get("restartPolicy", "Always") == "Always" else Exit()

    async def start(self, pod: PodHandle) -> None:
        current = pod.pod
        if current is None:
            return
        key = (pod.namespace, pod.name)
        self._handles[key] = pod
        self._tasks[key] = asyncio.create_task(self._run(pod, self.behaviour(current)))

    async def stop(self, pod: PodHandle) -> None:
        self._handles.pop((pod.namespace, pod.name), None)
        task = self._tasks.pop((pod.namespace, pod.name), None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def oom_kill(self, namespace: str, name: str, message: str = "") -> None:
        """Test hook: OOM-kill a running pod now; it keeps crashing (CrashLoopBackOff) from then."""
        key = (namespace, name)
        pod = self._handles[key]
        self._tasks[key].cancel()
        _oom(pod, message)
        self._tasks[key] = asyncio.create_task(self._crash_loop(pod, self.delay, message))

    async def _run(self, pod: PodHandle, behaviour: Behaviour) -> None:
        pod.running(ready=False)
        match behaviour:
            case Serve(ready_after=after):
                await asyncio.sleep(self.delay if after is None else after)
                pod.running(ready=True)
            case Exit(code=code, message=message, reason=reason, after=after):
                await asyncio.sleep(self.delay if after is None else after)
                pod.terminated(exit_code=code, reason=reason, message=message)
            case OOMKill(after=after, message=message):
                await self._crash_loop(pod, self.delay if after is None else after, message)
            case Hang():
                pass

    async def _crash_loop(self, pod: PodHandle, after: float, message: str) -> None:
        backoff = after
        while pod.pod is not None:
            await asyncio.sleep(backoff)
            _oom(pod, message)
            backoff = min(backoff * 2, 5.0)


def _oom(pod: PodHandle, message: str) -> None:
    pod.crashed(exit_code=137, reason="OOMKilled", message=message)
