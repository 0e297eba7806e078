"""The operator's process stays small: `tierwise run` loads no fleet solver (scipy) nor torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

_IMPORTS_OF_RUN = (
    "import sys; from tierwise_operator.cli import build_parser; build_parser(); "
    "import tierwise_operator.runner; "
    "print(sorted(m for m in ('numpy', 'scipy', 'torch') if m in sys.modules))"
)


@pytest.mark.slow
def test_tierwise_run_imports_neither_the_fleet_solver_nor_torch() -> None:
    # A fresh interpreter: this one has long imported them for other tests.
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_OF_RUN], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
