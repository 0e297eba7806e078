"""`tierwise plan`: tables for people, JSON/YAML for pipelines, exit codes 0 / 2 / 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tierwise_operator.cli import main

from ..conftest import SAMPLES

NOW = ["--now", "2026-11-25T10:00:00Z"]
MODEL = """\
apiVersion: tierwise.dev/v1alpha1
kind: InferenceModel
metadata: {name: tiny, namespace: team}
spec:
  model:
    {task: text-embedding, architecture: bert, source: {uri: builtin://x}, parameters: 22713216}
  accuracyBudget: {maxDegradation: "2%"}
  slo: {latencyP99: LATENCY}
  traffic: {targetRPS: 10}
  replicas: {min: 1, max: 8}
"""


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args, *NOW])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_committed_samples_plan_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "-f", str(SAMPLES), "--tiers", str(SAMPLES))
    assert code == 0
    header, *rows = out.splitlines()[:3]
    assert header.split()[:3] == ["MODEL", "VARIANT", "PRECISION"]
    assert {r.split()[0] for r in rows} == {"default/ticket-embedder", "default/ticket-summarizer"}
    assert "int4/cpu-large     accuracy delta 3% > budget 2%" in out
    assert out.rstrip().splitlines()[-1].startswith("solver: ")


def test_tiers_may_come_with_the_models_in_one_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert plan(capsys, "-f", str(SAMPLES))[0] == 0


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_machine_output_has_every_figure(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = plan(capsys, "-f", str(SAMPLES), "-o", fmt)
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert code == 0 and data["solver"] in ("exact", "heuristic")
    embedder = next(p for p in data["plans"] if p["model"] == "default/ticket-embedder")
    for field in ("variant", "precision", "tierClass", "replicas", "costPerHour",
                  "costPer1kInferences", "baselinePer1kInferences", "rejected"):  # fmt: skip
        assert embedder[field] not in (None, []), field
    assert float(embedder["costPer1kInferences"]) < float(embedder["baselinePer1kInferences"])
    assert {"candidate", "why"} == set(embedder["rejected"][0])


def test_a_model_without_any_feasible_plan_exits_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    models = write(tmp_path, "m.yaml", MODEL.replace("LATENCY", "10us"))
    code, out, _ = plan(capsys, "-f", models, "--tiers", str(SAMPLES / "tierclasses.yaml"))
    assert code == 3
    assert "infeasible" in out and "no feasible plan; closest: " in out


def test_traffic_from_a_metrics_snapshot_raises_the_planned_capacity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    models = write(tmp_path, "m.yaml", MODEL.replace("LATENCY", "200ms"))
    tiers = str(SAMPLES / "tierclasses.yaml")
    snapshot = write(tmp_path, "s.yaml", """\
kind: MetricsSnapshot
takenAt: "2026-11-25T09:59:00Z"
models:
  - {namespace: team, name: tiny, requestRate: 400, observedAt: "2026-11-25T09:59:00Z"}
""")  # fmt: skip
    quiet = json.loads(plan(capsys, "-f", models, "--tiers", tiers, "-o", "json")[1])
    busy = json.loads(plan(capsys, "-f", models, "--tiers", tiers, "--metrics", snapshot,
                           "-o", "json")[1])  # fmt: skip
    assert float(busy["costPerHour"]) > float(quiet["costPerHour"])


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--tiers", "BAD"], "spec.slo.latencyP99"),
        ([], "TierClass: none found"),
        (["--tiers", str(SAMPLES), "--now", "yesterday"], '--now: "yesterday"'),
        (["--tiers", str(SAMPLES), "--metrics", "SNAP"], "nodes[0].freeMemory"),
        (["--tiers", str(SAMPLES), "-f", "TWIN"], "InferenceModel team/tiny: defined twice"),
    ],
)
def test_invalid_input_exits_2_with_one_line_per_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], problem: str
) -> None:
    models = write(tmp_path, "m.yaml", MODEL.replace("LATENCY", "50ms"))
    replace = {
        "BAD": write(tmp_path, "bad.yaml", MODEL.replace("LATENCY", "fast")),
        "SNAP": write(tmp_path, "s.yaml", "takenAt: '2026-11-25T10:00:00Z'\n"
                      "nodes: [{name: n, tierClass: cpu-large, freeMemory: lots}]\n"),
        "TWIN": write(tmp_path, "twin.yaml", MODEL.replace("LATENCY", "99ms")),
    }  # fmt: skip
    code = main(["plan", "-f", models, *[replace.get(a, a) for a in extra]])
    _, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert any(problem in line for line in lines), lines
    assert all(": " in line for line in lines)


def test_a_tier_class_that_does_not_exist_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = MODEL.replace("LATENCY", "200ms") + "  tierClasses: [cpu-large, cpu-larg]\n"
    models = write(tmp_path, "m.yaml", text)
    code, out, err = plan(capsys, "-f", models, "--tiers", str(SAMPLES / "tierclasses.yaml"))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        'InferenceModel team/tiny: spec.tierClasses: no TierClass named "cpu-larg"'
    ]


def test_ignored_inputs_are_warnings_on_stderr_and_the_plan_still_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = MODEL.replace("LATENCY", "200ms").replace(
        "parameters: 22713216}", "parameters: 22713216, contextLength: 4096}"
    )
    models = write(tmp_path, "m.yaml", text)
    snapshot = write(tmp_path, "s.yaml", """\
takenAt: "2026-11-25T09:59:00Z"
nodes:
  - {name: c1, tierClass: cpu-large, freeMemory: 64Gi, freeCpu: 16}
  - {name: old1, tierClass: cpu-legacy, freeMemory: 64Gi, freeCpu: 16}
""")  # fmt: skip
    tiers = str(SAMPLES / "tierclasses.yaml")
    code, out, err = plan(capsys, "-f", models, "--tiers", tiers, "--metrics", snapshot)
    assert code == 0 and "team/tiny" in out
    assert err.splitlines() == [
        "warning: InferenceModel team/tiny: spec.model.contextLength ignored: "
        "a text-embedding model keeps no KV cache",
        'warning: metrics snapshot: 1 node of TierClass "cpu-legacy" ignored (old1): '
        "no such TierClass",
    ]


def test_plan_is_listed_in_the_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "plan" in capsys.readouterr().out
