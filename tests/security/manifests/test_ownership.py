"""Deciding whose a child's name is, and what the model says when it is someone else's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tierwise_operator.api import Condition
from tierwise_operator.kube import PDBS, Kind, KubeError
from tierwise_operator.ownership import delete_if_owned, foreign_children
from tierwise_operator.reconcile.conflicts import conflict_message, hold_for_conflicts, owned_by
from tierwise_operator.reconcile.world import Actions, Event

UID = "model-uid"
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def obj(kind: str, name: str, refs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "support", "uid": f"{kind}-{name}"}
    if refs is not None:
        meta["ownerReferences"] = refs
    return {"apiVersion": "apps/v1" if kind == "Deployment" else "v1", "kind": kind,
            "metadata": meta}  # fmt: skip


def ref(uid: str, controller: bool = True, kind: str = "InferenceModel") -> dict[str, Any]:
    return {"apiVersion": "x/v1", "kind": kind, "name": "m", "uid": uid, "controller": controller}


class FakeKube:
    """Objects by name; records deletes and their uid preconditions."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {o["metadata"]["name"]: o for o in objects}
        self.gets: list[str] = []
        self.deleted: list[tuple[str, str | None]] = []

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Any:
        self.gets.append(name)
        return self.objects.get(name)

    async def delete(self, kind: Kind, name: str, namespace: str | None = None,
                     uid: str | None = None) -> bool:  # fmt: skip
        if uid and self.objects[name]["metadata"]["uid"] != uid:
            raise KubeError(409, "precondition failed")
        self.deleted.append((name, uid))
        return True


def test_only_a_controller_reference_with_the_models_uid_makes_a_child_the_models() -> None:
    assert owned_by(obj("Deployment", "m", [ref(UID)]), UID)
    assert not owned_by(obj("Deployment", "m"), UID)
    assert not owned_by(obj("Deployment", "m", [ref(UID, controller=False)]), UID)
    assert not owned_by(obj("Deployment", "m", [ref("an-older-model")]), UID)


def test_the_message_names_the_object_and_who_holds_it() -> None:
    plain = conflict_message(obj("Deployment", "m"), "Deployment")
    assert plain.startswith("Deployment support/m already exists and is not owned by this")
    held = conflict_message(obj("Service", "m", [ref("x", kind="Gateway")]), "Service")
    assert "is controlled by Gateway m" in held


async def test_children_the_watch_knows_cost_no_request_and_strangers_are_found() -> None:
    mine = obj("Deployment", "m", [ref(UID)])
    theirs = obj("Service", "m")
    kube = FakeKube(theirs)
    actions = Actions(status={}, apply=[mine, obj("Service", "m")])
    watched = {"Deployment": mine}
    conflicts = await foreign_children(kube, UID, actions, lambda m: watched.get(m["kind"]))
    assert kube.gets == ["m"]  # only the Service, which the watch has no record of
    assert conflicts == [conflict_message(theirs, "Service")]


async def test_a_pdb_is_deleted_only_when_the_model_controls_it_and_only_that_object() -> None:
    theirs = FakeKube(obj("PodDisruptionBudget", "m"))
    assert not await delete_if_owned(theirs, PDBS, "m", "support", UID)
    assert theirs.deleted == []
    mine = FakeKube(obj("PodDisruptionBudget", "m", [ref(UID)]))
    assert await delete_if_owned(mine, PDBS, "m", "support", UID)
    assert mine.deleted == [("m", "PodDisruptionBudget-m")]


def _held(before: list[Condition], now: datetime = NOW) -> Actions:
    planned = Actions(
        status={"tierClass": "cpu-large", "conditions": []},
        create=[obj("Job", "m-profile")], apply=[obj("Deployment", "m")],
        delete=[(PDBS, "m")], events=[Event("Normal", "Planned", "initial")],
    )  # fmt: skip
    return hold_for_conflicts(planned, before, ["Deployment support/m already exists"], 3, now)


def test_a_conflict_drops_every_child_write_and_says_why() -> None:
    held = _held([])
    assert (held.create, held.apply, held.delete) == ([], [], [])
    (ready,) = [c for c in held.status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert ready["observedGeneration"] == 3 and "Deployment support/m" in ready["message"]
    assert held.status["tierClass"] == "cpu-large"
    assert [e.reason for e in held.events] == ["Planned", "NameConflict"]
    assert held.events[-1].type == "Warning"


def test_a_conflict_that_persists_posts_no_second_event_and_keeps_its_transition_time() -> None:
    first = _held([])
    before = [Condition.model_validate(c) for c in first.status["conditions"]]
    again = _held(before, NOW + timedelta(minutes=5))
    assert [e.reason for e in again.events] == ["Planned"]
    assert again.status["conditions"] == first.status["conditions"]
