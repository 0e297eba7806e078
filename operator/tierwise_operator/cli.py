"""The `tierwise` command line: CRDs and docs, manifest checks, planning, the operator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .api import InvalidSpec

Command = Callable[[argparse.Namespace], int]


def _cmd_crds(args: argparse.Namespace) -> int:
    from .crd.generate import rendered_files, write_all

    directory = Path(args.dir)
    if args.check:
        stale = [
            name
            for name, text in rendered_files().items()
            if not (directory / name).exists() or (directory / name).read_text() != text
        ]
        if stale:
            print(f"out of date (run `tierwise crds`): {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"the files in {directory} match the API models")
        return 0
    for path in write_all(directory):
        print(f"wrote {path}")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from .apidoc import render_api_doc
    from .operatordoc import render_operator_doc

    docs = {
        Path(args.out): render_api_doc(Path(args.samples)),
        Path(args.out).with_name("operator.md"): render_operator_doc(),
    }
    if args.check:
        stale = [str(p) for p, text in docs.items() if not p.exists() or p.read_text() != text]
        if stale:
            print(f"out of date (run `tierwise docs`): {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    for path, text in docs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .manifests import load_resources

    try:
        models, tiers = load_resources(Path(f) for f in args.filename)
    except InvalidSpec as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    print(f"valid: {len(models)} InferenceModel(s), {len(tiers)} TierClass(es)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .api import ModelProfile, Percentage, format_validation_error
    from .report import pareto_front, points, render

    try:
        profile = ModelProfile.model_validate_json(Path(args.profile).read_text())
        budget = Percentage.parse(args.budget) if args.budget else None
    except OSError as exc:
        print(f"{args.profile}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for line in format_validation_error(exc):
            print(f"{args.profile}: {line}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"--budget: {exc}", file=sys.stderr)
        return 2
    try:
        out = render(profile, Path(args.out), budget, args.batch)
    except ValueError as exc:
        print(f"{args.profile}: {exc}", file=sys.stderr)
        return 2
    for point in pareto_front(points(profile, args.batch)):
        print(
            f"frontier: {point.label:<24} {point.memory_bytes / 2**20:9.1f} MiB "
            f"delta {point.delta:.3%}  p99 {point.p99_ms:.1f} ms"
        )
    print(f"wrote {out}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from .plan_cli import run

    return run(args)


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .runner import run
    from .settings import Settings, SettingsError

    logging.basicConfig(
        level=args.log_level,
        format='{"time": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", '
        '"message": "%(message)s"}'
        if args.log_format == "json"
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"tierwise run: {exc}", file=sys.stderr)
        return 2
    namespaces = tuple(args.namespace) or settings.namespaces
    if args.all_namespaces:
        namespaces = ()
    try:
        asyncio.run(
            run(
                settings,
                namespaces=namespaces,
                standalone=args.peering is None,
                peering=args.peering,
                priority=args.priority,
                port=args.port,
            )
        )
    except KeyboardInterrupt:
        return 0
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .local.dev import Dev, DevOptions, run_until_signalled

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = DevOptions(
        workdir=Path(args.workdir),
        samples=Path(args.samples),
        crds=Path(args.crds),
        port=args.port,
        once=args.once,
        prometheus=not args.no_prometheus,
    )
    return asyncio.run(run_until_signalled(Dev(options).run()))


def _cmd_gateway(args: argparse.Namespace) -> int:
    from .gateway.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tierwise",
        description="Memory-aware model serving: run InferenceModels on the cheapest tier.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument("--dir", default="crds", help="output directory (default: crds)")
    crds.add_argument("--check", action="store_true", help="fail if the files are out of date")
    crds.set_defaults(func=_cmd_crds)

    docs = sub.add_parser(
        "docs", help="write docs/api.md and docs/operator.md from the models and settings"
    )
    docs.add_argument("--out", default="docs/api.md")
    docs.add_argument("--samples", default="deploy/samples")
    docs.add_argument("--check", action="store_true", help="fail if the file is out of date")
    docs.set_defaults(func=_cmd_docs)

    validate = sub.add_parser("validate", help="check manifests against the API")
    validate.add_argument(
        "-f", "--filename", action="append", required=True, help="file or directory (repeatable)"
    )
    validate.set_defaults(func=_cmd_validate)
    run = sub.add_parser(
        "run",
        help="run the operator (kopf) against the cluster in the kubeconfig or in-cluster",
        description="Settings come from TIERWISE_* environment variables (see docs/operator.md).",
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable; default: TIERWISE_NAMESPACES or all)",
    )
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--standalone", action="store_true", default=True, help="one replica, no peering (default)"
    )
    mode.add_argument(
        "--peering", metavar="NAME", help="coordinate several replicas through a ClusterKopfPeering"
    )
    run.add_argument(
        "--priority",
        type=int,
        help="peering priority: the live replica with the highest works, the others wait "
        "(default: random per start, as replicas must never tie)",
    )
    run.add_argument("--port", type=int, default=8080, help="/healthz and /metrics (0: off)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--log-format", default="plain", choices=["plain", "json"])
    run.set_defaults(func=_cmd_run)

    dev = sub.add_parser(
        "dev",
        help="run the whole loop on this machine: API emulator, operator, runtimes, Prometheus",
    )
    dev.add_argument("--workdir", default=".tierwise", help="kubeconfig, pod logs, offload files")
    dev.add_argument("--samples", default="deploy/samples")
    dev.add_argument("--crds", default="crds")
    dev.add_argument("--port", type=int, help="API port (default: a free one)")
    dev.add_argument("--once", action="store_true", help="exit after the demo instead of waiting")
    dev.add_argument(
        "--no-prometheus",
        action="store_true",
        help="read the runtimes' /metrics directly even if Prometheus is installed",
    )
    dev.set_defaults(func=_cmd_dev)

    from .gateway.cli import add_arguments as gateway_arguments

    gateway = sub.add_parser(
        "gateway",
        help="one OpenAI endpoint for every InferenceModel: route by model, wake from zero",
    )
    gateway_arguments(gateway)
    gateway.set_defaults(func=_cmd_gateway)

    report = sub.add_parser("report", help="draw a profile's trade-offs and Pareto frontier")
    report.add_argument("profile", help="profile JSON written by `tierwise-runtime profile --out`")
    report.add_argument("--out", default="frontier.png", help="PNG to write")
    report.add_argument("--budget", help="accuracy budget to draw, e.g. 2%%")
    report.add_argument("--batch", type=int, help="batch size whose p99 to show")
    report.set_defaults(func=_cmd_report)

    from .plan_cli import add_arguments

    plan = sub.add_parser(
        "plan",
        help="choose variant, precision, tier and replicas for InferenceModels in files",
        description="Exit code 0: every model has a feasible plan; 3: some has none; "
        "2: invalid input.",
    )
    add_arguments(plan)
    plan.set_defaults(func=_cmd_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
