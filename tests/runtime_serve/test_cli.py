"""`tierwise-runtime`: serve hands its flags to the loader and server; bad flags fail in a line."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tierwise_runtime import cli, server
from tierwise_runtime.serve_config import ServeConfig

from .conftest import child_env
from .fakes import FakeEmbeddingEngine

SERVE = ["serve", "--model", "builtin://all-minilm-l6-v2"]


@pytest.fixture
def fake_loader(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Stands in for tierwise_runtime.loader and for the server; records what they are given."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    module = ModuleType("tierwise_runtime.loader")

    def load_engine(*args: Any, **kwargs: Any) -> FakeEmbeddingEngine:
        calls.append((args, kwargs))
        return FakeEmbeddingEngine()

    module.load_engine = load_engine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tierwise_runtime.loader", module)

    def fake_serve(load: Any, config: ServeConfig) -> int:
        engine = load()
        calls.append(((engine,), {"config": config}))
        return 0

    monkeypatch.setattr(server, "serve", fake_serve)
    return calls


def test_help_imports_neither_torch_nor_the_server() -> None:
    code = (
        "import contextlib, sys\n"
        "from tierwise_runtime import cli\n"
        "with contextlib.suppress(SystemExit):\n"
        "    cli.main(['serve', '--help'])\n"
        "heavy = ('torch', 'aiohttp', 'tierwise_runtime.server')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, check=True, env=child_env(),
    )  # fmt: skip
    assert "--max-wait-ms" in result.stdout
    assert result.stdout.strip().endswith("[]")


def test_serve_passes_its_flags_to_the_loader_and_the_server(
    fake_loader: list[tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    argv = [*SERVE, "--precision", "int4", "--device", "cuda:1", "--offload-dir", "/nvme",
            "--group-size", "32", "--name", "minilm", "--host", "127.0.0.1", "--port", "9000",
            "--max-batch", "16", "--max-wait-ms", "2.5", "--max-queue", "64",
            "--drain-timeout", "5"]  # fmt: skip
    assert cli.main(argv) == 0
    (load_args, load_kwargs), (_, served) = fake_loader
    assert load_args == ("builtin://all-minilm-l6-v2", "int4")
    assert load_kwargs == {
        "device": "cuda:1", "offload_dir": Path("/nvme"), "group_size": 32, "name": "minilm",
    }  # fmt: skip
    config = served["config"]
    assert (config.host, config.port, config.drain_timeout_s) == ("127.0.0.1", 9000, 5.0)
    limits = config.limits
    assert (limits.max_batch, limits.max_wait_s, limits.max_queue) == (16, 0.0025, 64)


def test_serve_defaults_to_fp32_on_cpu_port_8000(
    fake_loader: list[tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    assert cli.main(SERVE) == 0
    (load_args, load_kwargs), (_, served) = fake_loader
    assert load_args[1] == "fp32" and load_kwargs["device"] == "cpu"
    assert served["config"].port == 8000


def test_threads_sets_torchs_cpu_threads(
    fake_loader: list[tuple[tuple[Any, ...], dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    set_to: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    assert cli.main([*SERVE, "--threads", "3"]) == 0
    assert set_to == [3]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([*SERVE, "--precision", "int3"], "invalid choice: 'int3'"),
        ([*SERVE, "--device", "tpu"], "'tpu' is not cpu, cuda or cuda:N"),
        ([*SERVE, "--port", "70000"], "70000 is not a port"),
        ([*SERVE, "--port", "http"], "'http' is not a number"),
        ([*SERVE, "--max-batch", "0"], "0 is not a positive integer"),
        ([*SERVE, "--max-wait-ms", "-1"], "-1 is not a non-negative number"),
        ([*SERVE, "--max-wait-ms", "nan"], "nan is not a non-negative number"),
        (["serve"], "the following arguments are required: --model"),
        (["train"], "invalid choice: 'train'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_flags_fail_with_one_line_naming_the_problem(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert problem in err


def test_a_missing_loader_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tierwise_runtime.loader", None)
    assert cli.main(SERVE) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tierwise_runtime.loader" in err


def test_a_subcommand_is_one_registered_function(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "SUBCOMMANDS", list(cli.SUBCOMMANDS))

    @cli.subcommand
    def add_hello(sub: Any) -> None:
        parser = sub.add_parser("hello", help="say hello")
        parser.add_argument("--to", default="world")
        parser.set_defaults(run=lambda args: print(f"hello {args.to}") or 0)

    assert cli.main(["hello", "--to", "pods"]) == 0
    assert capsys.readouterr().out == "hello pods\n"
    assert isinstance(cli.build_parser(), argparse.ArgumentParser)


def test_a_port_in_use_fails_before_the_model_loads() -> None:
    loads: list[str] = []

    def load() -> FakeEmbeddingEngine:
        loads.append("loaded")
        return FakeEmbeddingEngine()

    with socket.create_server(("127.0.0.1", 0)) as taken:
        config = ServeConfig(host="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            server.serve(load, config)
    assert loads == []


def test_serve_attaches_the_adapters_list_and_watches_it(
    fake_loader: list[tuple[tuple[Any, ...], dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from tierwise_runtime.adapters import attach

    listing = tmp_path / "adapters.json"
    listing.write_text('{"adapters": [{"name": "tuned", "source": "file:///lora/tuned"}]}')
    attached: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(attach, "attach_adapters", lambda e, s, **kw: attached.append((s, kw)))
    argv = [*SERVE, "--adapters", str(listing), "--max-adapters", "3", "--adapter-dtype",
            "bf16", "--adapters-poll", "0.5"]  # fmt: skip
    assert cli.main(argv) == 0
    [(specs, settings)] = attached
    assert [(s.name, s.source) for s in specs] == [("tuned", "file:///lora/tuned")]
    assert settings["capacity"] == 3 and str(settings["dtype"]) == "torch.bfloat16"
    config = fake_loader[-1][1]["config"]
    assert (config.adapters_file, config.adapters_poll_s) == (listing, 0.5)


def test_serve_passes_an_int4_calibration_only_when_asked(
    fake_loader: list[tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    assert cli.main([*SERVE, "--precision", "int4", "--int4-calibration", "rtn"]) == 0
    (_, load_kwargs), _ = fake_loader
    assert load_kwargs["calibration"] == "rtn"
