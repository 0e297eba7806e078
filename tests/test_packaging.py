"""The distribution installs as `tierwise` without ever shadowing the stdlib `operator` module."""

from __future__ import annotations

import operator
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()

_PROBE = (
    "import operator, tierwise_operator, tierwise_runtime;"
    "operator.itemgetter;"
    "print(operator.__file__); print(tierwise_operator.__file__)"
)


def test_operator_is_the_stdlib_module_under_pytest() -> None:
    assert Path(operator.__file__).resolve().parent == STDLIB
    assert callable(operator.itemgetter)


def test_operator_source_root_is_not_a_package() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()
    assert (REPO / "operator" / "tierwise_operator" / "__init__.py").exists()
    assert (REPO / "runtime" / "tierwise_runtime" / "__init__.py").exists()


def test_operator_is_the_stdlib_module_from_the_repository_root() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert Path(out[0]).resolve().parent == STDLIB


@pytest.mark.slow
def test_a_normal_install_keeps_operator_stdlib_and_ships_both_packages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next((tmp_path / "dist").glob("tierwise-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert not any(n.startswith("operator/") for n in names), "operator/ must not be packaged"
    assert "tierwise_operator/__init__.py" in names
    assert "tierwise_runtime/__init__.py" in names
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "tierwise = tierwise_operator.cli:main" in entry_points
    assert "tierwise-runtime = tierwise_runtime.cli:main" in entry_points

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    # -I ignores the editable install of the dev environment, PYTHONPATH puts
    # the installed copy first, and the repository root is the working dir.
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {_PROBE}"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert Path(out[0]).resolve().parent == STDLIB
    assert Path(out[1]).resolve().is_relative_to(target.resolve())


def test_ci_runs_the_readme_test_command_and_fails_on_an_empty_suite(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert "make check" in readme and "make check" in (REPO / ".ci" / "run").read_text()
    (tmp_path / "conftest.py").write_text("")
    pytest_bin = str(Path(sys.executable).parent / "pytest")
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "pytest-strict.sh"), pytest_bin,
         "-q", "-p", "no:cacheprovider", str(tmp_path)],
        check=False, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "collected no tests" in result.stderr
