"""The `seds` command. Subcommands live in pipeline/commands/, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "pipeline.commands.data",
    "pipeline.commands.run",
    "pipeline.commands.cache",
    "pipeline.commands.queue",
    "pipeline.commands.params",
    "pipeline.commands.viz",
    "pipeline.commands.train",
    "pipeline.commands.interop",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seds",
        description="SEDS feature pipeline: sample data, manifests, item stages over a content-addressed store, "
                    "training and reports. Every stage also runs under `dvc repro` (see README.md).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `seds ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
