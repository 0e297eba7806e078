"""The e2e suite itself, run against the API emulator (scripts/e2e_emulator.py), so it cannot rot
between runs on real clusters: every test passes or skips for a stated reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]


@pytest.mark.parametrize("mode", [[], ["--in-cluster"]], ids=["local-operator", "in-cluster"])
def test_e2e_suite_passes_against_the_emulator(mode: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "e2e_emulator.py"), "--", "-q", "-p",
         "no:cacheprovider", *mode],
        cwd=REPO, capture_output=True, text=True, timeout=540, check=False,
        env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    # Only the access-review tests may skip here: the emulator has no RBAC enforcement.
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("cannot answer access reviews" in line for line in skips), skips
