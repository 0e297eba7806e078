"""`tierwise report` draws the trade-off with its Pareto frontier, and refuses bad input clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise_operator.cli import main
from tierwise_operator.report import Point, pareto_front

from ..test_profile_codec import make_profile


def _p(label: str, memory: int, delta: float, p99: float) -> Point:
    from tierwise_operator.api import TierKind

    return Point(label, TierKind.CPU, memory, delta, p99)


def test_the_frontier_keeps_only_undominated_candidates() -> None:
    fp32 = _p("fp32", 400, 0.0, 10.0)
    int8 = _p("int8", 100, 0.001, 8.0)
    int4 = _p("int4", 60, 0.03, 9.0)
    worse = _p("fp16", 200, 0.001, 40.0)  # beaten by int8 on every axis
    assert pareto_front([fp32, int8, int4, worse]) == [int4, int8, fp32]


def test_report_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(make_profile(variants=1).model_dump_json(by_alias=True))
    out = tmp_path / "frontier.png"
    assert main(["report", str(profile), "--out", str(out), "--budget", "2%"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "frontier:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "No such file"),
        ("{}", [], "model: required field is missing"),
        ('{"model": {"uri": "x", "task": "text-embedding", "architecture": "bert", '
         '"parameters": 1}}', [], "no measured candidate"),
        ("ok", ["--budget", "lots"], None),
    ],
)  # fmt: skip
def test_bad_input_gets_one_line_and_exit_code_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    args: list[str],
    message: str | None,
) -> None:
    path = tmp_path / "profile.json"
    if content == "ok":
        path.write_text(make_profile(variants=1).model_dump_json(by_alias=True))
    elif content is not None:
        path.write_text(content)
    assert main(["report", str(path), "--out", str(tmp_path / "x.png"), *args]) == 2
    err = capsys.readouterr().err
    assert (message or "is not a percentage") in err
