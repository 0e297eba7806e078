"""The Job controller: pods until `completions` succeed or `backoffLimit` failures, then status.

Covers non-indexed Jobs with `completions` and `parallelism` (default 1 each)
and `backoffLimit` (default 6). Each pod that ends Failed counts one failure
and is replaced; the Job gets `Complete` or `Failed` (BackoffLimitExceeded)
with `SuccessCriteriaMet`/`FailureTarget` as batch/v1 reports them. Not
covered: indexed Jobs, pod failure policies, `activeDeadlineSeconds`, TTL.
"""

from __future__ import annotations

from typing import Any

from ..admission import now, random_suffix
from ..storage import Event
from .base import Controller
from .objects import condition, controlled_by, controller_of, key_of, owner_reference, terminating


def finished(job: dict[str, Any]) -> bool:
    return any(
        (c := condition(job, kind)) is not None and c.get("status") == "True"
        for kind in ("Complete", "Failed")
    )


class JobController(Controller):
    name = "job-controller"

    def wants(self, event: Event) -> list[Any]:
        if event.rtype.plural == "jobs" and event.rtype.group == "batch":
            return [key_of(event.object)]
        if event.rtype.plural == "pods" and event.rtype.group == "":
            ref = controller_of(event.object, "Job")
            return [(event.namespace, ref["name"])] if ref else []
        return []

    def resync(self) -> list[Any]:
        return [key_of(j) for j in self.api.list(self._jobs, copy=False)]

    @property
    def _jobs(self) -> Any:
        return self.api.registry.lookup("jobs.batch")

    @property
    def _pods(self) -> Any:
        return self.api.registry.lookup("pods")

    async def reconcile(self, key: tuple[str, str]) -> None:
        job = self.api.store.get(self._jobs, *key)
        if job is None or terminating(job):
            return
        pods = [p for p in self.api.list(self._pods, key[0], copy=False) if controlled_by(p, job)]
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        active = [
            p
            for p, ph in zip(pods, phases, strict=True)
            if ph not in {"Succeeded", "Failed"} and not terminating(p)
        ]
        spec = job["spec"]
        completions, parallelism = spec.get("completions", 1), spec.get("parallelism", 1)
        outcome = self._outcome(job, succeeded, failed)
        if outcome is None and not finished(job):
            wanted = min(parallelism, completions - succeeded) - len(active)
            for _ in range(max(0, wanted)):
                active.append(self._create_pod(job))
        elif active:
            for pod in active:
                self.api.delete(self._pods, pod["metadata"]["namespace"], pod["metadata"]["name"])
            active = []
        self._write_status(job, succeeded, failed, len(active), outcome)

    def _outcome(self, job: dict[str, Any], succeeded: int, failed: int) -> str | None:
        if succeeded >= job["spec"].get("completions", 1):
            return "Complete"
        if failed > job["spec"].get("backoffLimit", 6):
            return "Failed"
        return None

    def _create_pod(self, job: dict[str, Any]) -> dict[str, Any]:
        template = job["spec"]["template"]
        meta = template.get("metadata") or {}
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        labels = {
            **meta.get("labels", {}),
            "batch.kubernetes.io/job-name": name,
            "job-name": name,
            "batch.kubernetes.io/controller-uid": uid,
            "controller-uid": uid,
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{random_suffix()}",
                "labels": labels,
                "annotations": dict(meta.get("annotations", {})),
                "ownerReferences": [owner_reference(self._jobs, job)],
            },
            "spec": template.get("spec", {}),
        }
        return self.api.create(self._pods, pod, job["metadata"]["namespace"], manager=self.name)

    def _write_status(
        self, job: dict[str, Any], succeeded: int, failed: int, active: int, outcome: str | None
    ) -> None:
        old = job.get("status") or {}
        stamp = now()
        status: dict[str, Any] = {"startTime": old.get("startTime", stamp)}
        status.update(
            {
                k: v
                for k, v in {"active": active, "succeeded": succeeded, "failed": failed}.items()
                if v
            }
        )
        status["conditions"] = old.get("conditions", [])
        if outcome and not finished(job):
            status["conditions"] = _final_conditions(outcome, stamp)
            if outcome == "Complete":
                status["completionTime"] = stamp
        elif "completionTime" in old:
            status["completionTime"] = old["completionTime"]
        if not status["conditions"]:
            del status["conditions"]
        if status != old:
            job["status"] = status
            meta = job["metadata"]
            self.api.update(
                self._jobs,
                job,
                meta["namespace"],
                meta["name"],
                subresource="status",
                manager=self.name,
            )


def _final_conditions(outcome: str, stamp: str) -> list[dict[str, Any]]:
    if outcome == "Complete":
        pairs = [
            (
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ),
            ("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ]
    else:
        pairs = [
            (
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ),
            ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ]
    return [
        {
            "type": t,
            "status": "True",
            "reason": r,
            "message": m,
            "lastProbeTime": stamp,
            "lastTransitionTime": stamp,
        }
        for t, r, m in pairs
    ]
