"""The `seds` command. Subcommands live in pipeline/commands/, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

COMMAND_MODULES = [
    "pipeline.commands.sample",
    "pipeline.commands.manifest",
    "pipeline.commands.run",
    "pipeline.commands.cache",
    "pipeline.commands.queue",
    "pipeline.commands.params",
    "pipeline.commands.viz",
    "pipeline.commands.train",
    "pipeline.commands.evaluate",
    "pipeline.commands.interop",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seds",
        description="SEDS feature pipeline: sample data, manifests, item stages over a content-addressed store, "
        "training and reports. Every stage also runs under `dvc repro` (see README.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return _run(build_parser().parse_args(argv))


def command_main(module: ModuleType, argv: list[str]) -> int:
    """The subcommands of one command module as a program: the DVC entry points (stages/*.py) import the
    module they run instead of the whole `seds` table, so a stage's code dependencies are what that module
    imports (pipeline/devtools/dvcdeps.py)."""
    parser = argparse.ArgumentParser(prog="seds")
    module.register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return _run(parser.parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except BrokenPipeError:  # `seds ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
