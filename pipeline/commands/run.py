"""`seds run <stage>`, `seds finalize <stage>` and the `python -m stages.<stage>` entry points."""

from __future__ import annotations

import argparse
import sys

from pipeline.commands.common import (EXIT_COVERAGE, EXIT_FAILURES, EXIT_OK, add_device_option, add_params_options, guarded,
                                      parse_overrides)

RUN_HELP = """Run one item stage over its input view. Computes only the items whose keys are not in the store
(per-item reuse), writes failures instead of crashing on bad input, and ends with one summary line.
With --shard I/N only that shard's rows are computed and no view is written (an array task); run
`seds finalize <stage>` afterwards to check coverage and write the view."""


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_params_options(parser)
    parser.add_argument("--shard", metavar="I/N", help="compute only shard I of N (array tasks: I = task id)")
    add_device_option(parser)
    parser.add_argument("--scheduler", help="override runtime.scheduler (synchronous, local, tcp://host:port)")
    parser.add_argument("--workers", type=int, help="override runtime.workers")
    parser.add_argument("--max-failures", type=int, help="override runtime.max_failures (-1: any number)")
    parser.add_argument("--retry-failed", action="store_true", help="recompute items recorded as failed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (summary line only)")
    add_feature_sets_option(parser)


def add_feature_sets_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all-feature-sets", action="store_true",
                        help="rgb: every entry of rgb.feature_sets, rgb.feature_set last (its view is the one "
                             "written), as the dvc.yaml stage does so that mixed sets (train.rgb_views) all exist")


def _overrides(args: argparse.Namespace) -> dict:
    overrides = parse_overrides(args.overrides)
    for flag, key in (("device", "runtime.device"), ("scheduler", "runtime.scheduler"), ("workers", "runtime.workers"),
                      ("max_failures", "runtime.max_failures")):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    return overrides


def execute(stage: str, args: argparse.Namespace, finalize_only: bool = False) -> int:
    if getattr(args, "all_feature_sets", False):
        return _execute_every_feature_set(stage, args, finalize_only)
    return _execute(stage, args, finalize_only)


def _execute_every_feature_set(stage: str, args: argparse.Namespace, finalize_only: bool) -> int:
    from pipeline.config import ParamError, load_params

    if stage != "rgb":
        raise ParamError(f"--all-feature-sets is an rgb option; {stage} has no feature sets")
    rgb = load_params(args.params, _overrides(args))["rgb"]
    others = [name for name in rgb.feature_sets if name != rgb.feature_set]
    for name in [*others, rgb.feature_set]:
        one = argparse.Namespace(**{**vars(args), "overrides": [*(args.overrides or []), f"rgb.feature_set={name}"]})
        code = _execute(stage, one, finalize_only)
        if code != EXIT_OK:
            return code
    return EXIT_OK


def _execute(stage: str, args: argparse.Namespace, finalize_only: bool) -> int:
    from pipeline.config import load_params
    from pipeline.runner.plan import ShardSpec
    from pipeline.runner.run import RunOptions, run_stage
    from pipeline.runner.view import CoverageError

    overrides = _overrides(args)
    params = load_params(args.params, overrides)
    shard = ShardSpec.parse(getattr(args, "shard", None))
    options = RunOptions(args.params, overrides, shard, retry_failed=getattr(args, "retry_failed", False),
                         finalize_only=finalize_only, progress=not getattr(args, "no_progress", False))
    try:
        summary = run_stage(stage, params, options)
    except CoverageError as err:
        print(f"seds: error: {err}", file=sys.stderr)
        return EXIT_COVERAGE
    print(summary.line(), flush=True)
    limit = params.runtime.max_failures
    if limit >= 0 and summary.failed > limit:
        print(f"seds: {summary.failed} item(s) failed, more than runtime.max_failures = {limit}; the failures "
              f"table lists each with its reason (seds cache failures {stage})", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


def stage_main(stage: str, argv: list[str] | None = None) -> int:
    """`python -m stages.<stage> [options]`: the same as `seds run <stage> [options]`."""
    parser = argparse.ArgumentParser(prog=f"python -m stages.{stage}", description=RUN_HELP)
    add_run_options(parser)
    parser.add_argument("--finalize", action="store_true", help="only check coverage and write the view")
    args = parser.parse_args(argv)
    return guarded(lambda a: execute(stage, a, finalize_only=a.finalize))(args)


def register(subparsers) -> None:
    from pipeline.runner.stage import ITEM_STAGES

    run = subparsers.add_parser("run", help="run one item stage (probe, pose, select, rgb, ...)", description=RUN_HELP)
    run.add_argument("stage", choices=sorted(ITEM_STAGES))
    add_run_options(run)
    run.set_defaults(func=guarded(lambda a: execute(a.stage, a)))

    fin = subparsers.add_parser("finalize", help="after sharded runs: check coverage, write the stage view",
                                description="Check that every row of the input view is in the store or in the failures "
                                            "table, then write manifests/<stage>.parquet (which DVC records).")
    fin.add_argument("stage", choices=sorted(ITEM_STAGES))
    add_params_options(fin)
    add_feature_sets_option(fin)
    fin.set_defaults(func=guarded(lambda a: execute(a.stage, a, finalize_only=True)))
