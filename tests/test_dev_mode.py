"""`make run`'s main job: `tierwise dev` runs the whole loop on this machine and ends cleanly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_dev_mode_serves_moves_and_wakes_without_a_failed_request(tmp_path: Path) -> None:
    workdir = tmp_path / "dev"
    result = subprocess.run(
        [sys.executable, "-m", "tierwise_operator.cli", "dev", "--once", "--workdir", str(workdir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for step in range(1, 8):
        assert f"== {step}." in out
    assert "candidates measured (cpu, offload)" in out
    assert re.search(r"ticket-embedder\s+\w+\s+(cpu-large|nvme-offload)\s+1\s+True", out), out
    assert "Event Normal PlanChanged: re-tier:" in out
    assert "Event Normal PlanChanged: scale-up:" in out
    served = re.search(r"through both changes: (\d+) requests, (\d+) failed", out)
    assert served is not None and int(served[1]) > 50 and served[2] == "0", out[-2000:]
    # Every request went through the gateway; a second model woke from zero for one.
    assert re.search(r"gateway: http://127\.0\.0\.1:\d+/v1", out), out[:2000]
    assert "planned at 0 replicas" in out, out[-3000:]
    assert "woken by traffic" in out, out[-3000:]
    assert "woken from zero: 1 request, 0 failed" in out, out[-3000:]
    assert (workdir / "kubeconfig").exists()
    # Every runtime process it started has gone with it.
    left = subprocess.run(
        ["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert left == []
