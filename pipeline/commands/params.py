"""`seds params`: check params.yaml, and list every knob with its default and help."""

from __future__ import annotations

import argparse
import dataclasses

from pipeline.commands.common import EXIT_OK, add_params_options, guarded, parse_overrides


def check(args: argparse.Namespace) -> int:
    from pipeline.config import SECTIONS, load_params, section_class

    if args.list:
        for name in SECTIONS:
            cls = section_class(name)
            print(f"{name}:")
            for f in dataclasses.fields(cls):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                extra = []
                if f.metadata.get("choices"):
                    extra.append("one of " + ", ".join(map(str, f.metadata["choices"])))
                if f.metadata.get("min") is not None:
                    extra.append(f">= {f.metadata['min']}")
                if f.metadata.get("max") is not None:
                    extra.append(f"<= {f.metadata['max']}")
                print(
                    f"  {f.name}: {default!r}  # {f.metadata.get('help', '')}"
                    + (f" ({'; '.join(extra)})" if extra else "")
                )
        return EXIT_OK
    params = load_params(args.params, parse_overrides(args.overrides))
    print(f"{args.params}: {len(params.sections)} section(s) valid: {', '.join(params.sections)}")
    return EXIT_OK


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "params",
        help="validate params.yaml (every key, type and range), or list all knobs",
        description="Validate the params file as every stage does before any work; with --list, "
        "print every section's keys with defaults and help.",
    )
    add_params_options(p)
    p.add_argument("--list", action="store_true", help="list every knob with its default and help")
    p.set_defaults(func=guarded(check))
