"""`seds sample`: render the built-in synthetic dataset (pipeline/sample/generate.py)."""

from __future__ import annotations

import argparse

from pipeline.commands.common import EXIT_OK, add_params_options, guarded, parse_overrides


def sample(args: argparse.Namespace) -> int:
    from pipeline.config import load_params
    from pipeline.sample.generate import generate

    params = load_params(args.params, parse_overrides(args.overrides))
    summary = generate(params["sample"])
    print(
        f"sample: {summary['clips']} clips ({summary['frames']} frames) in {params['sample'].out}: "
        + ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    )
    return EXIT_OK


def register(subparsers) -> None:
    s = subparsers.add_parser(
        "sample",
        help="render the built-in synthetic sample dataset (params: sample)",
        description="Render the sample dataset: synthetic signing clips (H.264), How2Sign-format "
        "CSVs per split, and ground-truth 133-keypoint trajectories.",
    )
    add_params_options(s)
    s.set_defaults(func=guarded(sample))
