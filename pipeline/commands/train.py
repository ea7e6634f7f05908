"""`seds train`: the SEDS model on the select and rgb views (pipeline/train/loop.py)."""

from __future__ import annotations

import argparse

from pipeline.commands.common import EXIT_OK, add_device_option, add_params_options, guarded, params_of


def train(args: argparse.Namespace) -> int:
    from pipeline.train.loop import train as run

    params = params_of(args)
    if args.no_progress:
        from dataclasses import replace

        params.sections["train"] = replace(params["train"], progress=False)
    result = run(params)
    print(f"train: {result.clips}; " + "; ".join(result.notes), flush=True)
    print(result.line(), flush=True)
    return EXIT_OK


def register(subparsers) -> None:
    t = subparsers.add_parser(
        "train",
        help="train SEDS on the select and rgb views (params: train)",
        description="Train the SEDS model on train.split, resuming from train.out/checkpoints/"
        "last.pt when its params match; writes model.pt, per-epoch plots and "
        "metrics.json under train.out.",
    )
    add_params_options(t)
    add_device_option(t)
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=guarded(train))
