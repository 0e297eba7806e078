"""`tierwise plan` prints exactly what the operator's fleet round reaches for the same objects."""

from __future__ import annotations

import io
import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import yaml

from tierwise_operator import plan_cli
from tierwise_operator.arbiter import plan_round
from tierwise_operator.manifests import load_resources
from tierwise_operator.planner import DEFAULT_SETTINGS
from tierwise_operator.reconcile.core import Prepared, prepare
from tierwise_operator.reconcile.world import World
from tierwise_operator.runner import planner_settings
from tierwise_operator.settings import Settings

from ..conftest import SAMPLES
from .profiles import embedder_profile

NOW = "2026-11-26T12:00:00Z"

#: One free H100 device and one CPU node: the models contend for both.
SNAPSHOT = {
    "kind": "MetricsSnapshot",
    "takenAt": NOW,
    "nodes": [
        {"name": "gpu-1", "tierClass": "gpu-h100", "freeMemory": "512Gi", "freeCpu": 100,
         "devices": [{"free": "80Gi"}] + [{"free": "1Gi", "allocated": True}] * 7},
        {"name": "cpu-1", "tierClass": "cpu-large", "freeMemory": "8Gi", "freeCpu": 6},
    ],
    "models": [
        {"namespace": "support", "name": f"embedder-{i}", "requestRate": rps, "observedAt": NOW}
        for i, rps in enumerate([900, 40, 3000])
    ],
}  # fmt: skip


def models() -> list[dict[str, Any]]:
    base: dict[str, Any] = yaml.safe_load((SAMPLES / "ticket-embedder.yaml").read_text())
    out = []
    for i, priority in enumerate([10, 100, 50]):
        doc = json.loads(json.dumps(base))
        doc["metadata"] = {"name": f"embedder-{i}", "namespace": "support"}
        doc["spec"]["priority"] = priority
        doc["spec"]["profile"] = embedder_profile().to_wire()
        out.append(doc)
    return out


def offline(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "models.yaml").write_text(yaml.safe_dump_all(models()))
    (tmp_path / "snapshot.yaml").write_text(yaml.safe_dump(SNAPSHOT))
    parser = ArgumentParser()
    plan_cli.add_arguments(parser)
    tiers = str(SAMPLES / "tierclasses.yaml")
    args = parser.parse_args(["-f", str(tmp_path / "models.yaml"), "--tiers", tiers,
                              "--metrics", str(tmp_path / "snapshot.yaml"), "-o", "json",
                              "--now", NOW])  # fmt: skip
    out = io.StringIO()
    plan_cli.run(args, out=out, err=io.StringIO())
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def live(tmp_path: Path) -> dict[str, Any]:
    _, tiers = load_resources([SAMPLES / "tierclasses.yaml"])
    snapshot = plan_cli.load_snapshot(tmp_path / "snapshot.yaml")
    now = plan_cli.parse_now(NOW)
    world = World(tiers=tiers, snapshot=snapshot)
    settings = Settings()
    prepared = [prepare({**doc, "status": {}}, world, now, settings) for doc in models()]
    assert all(isinstance(p, Prepared) for p in prepared)
    fleet = plan_round(
        [p for p in prepared if isinstance(p, Prepared)], snapshot, now, planner_settings(settings)
    )
    return plan_cli.fleet_record(fleet)


def test_the_cli_and_the_operator_reach_the_same_fleet_plan(tmp_path: Path) -> None:
    cli, operator = offline(tmp_path), live(tmp_path)
    assert cli == operator
    # The inputs really contend: not every model gets its own best option.
    assert any("taken by" in r["why"] for p in cli["plans"] for r in p["rejected"])


def test_the_operator_plans_with_the_planner_defaults_when_nothing_is_set() -> None:
    assert planner_settings(Settings()) == DEFAULT_SETTINGS
