"""The `tierwise` command line: CRDs and docs, manifest checks, planning, the operator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .api import InvalidSpec

Command = Callable[[argparse.Namespace], int]


def _cmd_crds(args: argparse.Namespace) -> int:
    from .crd.generate import ALL_CRDS, render, write_all

    directory = Path(args.dir)
    if args.check:
        stale = [
            crd.filename
            for crd in ALL_CRDS
            if not (directory / crd.filename).exists()
            or (directory / crd.filename).read_text() != render(crd)
        ]
        if stale:
            print(f"out of date (run `tierwise crds`): {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{len(ALL_CRDS)} CRDs in {directory} match the API models")
        return 0
    for path in write_all(directory):
        print(f"wrote {path}")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from .apidoc import render_api_doc

    text = render_api_doc(Path(args.samples))
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is out of date (run `tierwise docs`)", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
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


def _cmd_plan(args: argparse.Namespace) -> int:
    from .plan_cli import run

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

    docs = sub.add_parser("docs", help="write docs/api.md from the API models and samples")
    docs.add_argument("--out", default="docs/api.md")
    docs.add_argument("--samples", default="deploy/samples")
    docs.add_argument("--check", action="store_true", help="fail if the file is out of date")
    docs.set_defaults(func=_cmd_docs)

    validate = sub.add_parser("validate", help="check manifests against the API")
    validate.add_argument(
        "-f", "--filename", action="append", required=True, help="file or directory (repeatable)"
    )
    validate.set_defaults(func=_cmd_validate)

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
