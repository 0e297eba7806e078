"""bench/operator.py's core with a handful of models, so the benchmark cannot silently rot."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import pytest

from ..conftest import REPO

BENCH = REPO / "bench"
MIB = 2**20


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/operator_load.py, imported the way the script imports it."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("operator_load")


@pytest.fixture
def cli(load: ModuleType) -> ModuleType:
    """bench/operator.py under another name: `operator` is the standard library's."""
    spec = importlib.util.spec_from_file_location("operator_bench_cli", BENCH / "operator.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("q", "expected"), [(50, 5.0), (95, 10.0), (99, 10.0), (10, 1.0), (100, 10.0)]
)
def test_percentile_is_nearest_rank(cli: ModuleType, q: float, expected: float) -> None:
    assert cli.percentile([float(v) for v in range(1, 11)], q) == expected


def test_fleet_fits_the_nodes_with_room_to_spare(load: ModuleType) -> None:
    nodes = load.nodes_for(500, pods_per_node=100)
    cpu = [n for n in nodes if n.labels == load.CPU]
    assert sum(int(n.allocatable["pods"]) for n in cpu) >= 1.25 * 500
    assert {"cpu", "nvme", "gpu"} == {n.name.split("-")[0] for n in nodes}


def test_models_carry_their_profile_inline_so_no_profile_job_runs(load: ModuleType) -> None:
    from tierwise_operator.api import InferenceModel

    model = InferenceModel.model_validate(load.model_manifest(7, load.profile()))
    assert model.name == "embedder-0007"
    assert model.spec.profile is not None
    assert len(model.spec.profile.candidates) == 15


@pytest.mark.slow
async def test_every_model_gets_a_deployment_from_the_operator_process(
    load: ModuleType, cli: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load.LoadConfig(models=5, probe=2, replan_s=2.0, window_s=3.0, deadline_s=60.0,
                             idle_s=0.5, pods_per_node=10)  # fmt: skip
    figures = await load.run_load(config)
    assert figures.missing == []
    assert figures.all_deployed_s is not None
    assert len(figures.probe_latencies) == 2
    assert len(figures.deploy_latencies) == len(figures.ready_latencies) == 3
    assert all(0 < d < 60 for d in figures.probe_latencies + figures.deploy_latencies)
    assert list(figures.marks) == ["idle", "reconciled", "settled", "end"]
    assert figures.marks["idle"].rss > 20 * MIB
    assert figures.rss_peak_sampled >= figures.marks["idle"].rss
    assert figures.reconciles.count["create"] >= 5
    assert figures.window_reconciles.get("timer", 0) >= 5  # a re-plan round in the window
    assert figures.writes["deployments"] >= 5
    before, after = figures.marks["settled"].requests, figures.marks["end"].requests
    patched = {k: n - before.get(k, 0) for k, n in after.items() if k.startswith("PATCH")}
    assert not any(patched.values()), f"writes while every plan held: {patched}"
    cli.report(figures)
    out = capsys.readouterr().out
    assert "create -> Deployment" in out and "operator CPU, steady window" in out
    assert "API requests in the steady window" in out
