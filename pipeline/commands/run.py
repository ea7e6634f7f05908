"""`seds run <stage>`, `seds finalize <stage>` and the `python -m stages.<stage>` entry points."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pipeline.commands.common import (
    EXIT_COVERAGE,
    EXIT_FAILURES,
    EXIT_OK,
    add_device_option,
    add_params_options,
    guarded,
    parse_overrides,
)
from pipeline.commands.item_stages import (
    ITEM_STAGES,
    SHARED_DECODE_MEMBERS,
    SHARED_DECODE_PROCESSOR,
    item_stage,
    shared_decode,
)

if TYPE_CHECKING:
    from pipeline.runner.stage import Stage

RUN_HELP = """Run one item stage over its input view. Computes only the items whose keys are not in the store
(per-item reuse), writes failures instead of crashing on bad input, and ends with one summary line.
With --shard I/N only that shard's rows are computed and no view is written (an array task); run
`seds finalize <stage>` afterwards to check coverage and write the view. `seds run pose rgb` runs both
stages over one decode per clip (what dvc.yaml's extract stage does): each keeps its own keys, store,
view and summary line, and a clip is decoded only for the stages that still need it."""


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_params_options(parser)
    parser.add_argument("--shard", metavar="I/N", help="compute only shard I of N (array tasks: I = task id)")
    add_device_option(parser)
    parser.add_argument("--scheduler", help="override runtime.scheduler (synchronous, local, tcp://host:port)")
    parser.add_argument("--workers", type=int, help="override runtime.workers")
    parser.add_argument(
        "--max-failures",
        type=_count_or_fraction,
        help="override runtime.max_failures: a count (-1: any number) or a fraction between 0 and 1",
    )
    parser.add_argument("--retry-failed", action="store_true", help="recompute items recorded as failed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (summary line only)")
    add_feature_sets_option(parser)


def _count_or_fraction(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a count or a fraction") from None


def add_feature_sets_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--used-feature-sets",
        action="store_true",
        help="rgb: every feature set something reads (rgb.feature_set, whose view is written last, and "
        "each set:NAME of train.rgb_views), each fingerprint once, as the dvc.yaml stage does; "
        "sets nothing reads are neither computed nor need their checkpoints",
    )


def _overrides(args: argparse.Namespace) -> dict:
    overrides = parse_overrides(args.overrides)
    for flag, key in (
        ("device", "runtime.device"),
        ("scheduler", "runtime.scheduler"),
        ("workers", "runtime.workers"),
        ("max_failures", "runtime.max_failures"),
    ):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    return overrides


def execute_stages(stages: list[type[Stage]], args: argparse.Namespace, finalize_only: bool = False) -> int:
    """One stage as `execute`; pose and rgb together over one decode per clip (finalize: one after the other)."""
    from pipeline.config import ParamError

    stages = list(dict.fromkeys(stages))
    if len(stages) == 1:
        return execute(stages[0], args, finalize_only)
    if not shared_decode([stage.name for stage in stages]):
        raise ParamError(
            f"stages {' '.join(stage.name for stage in stages)}: only {' and '.join(SHARED_DECODE_MEMBERS)} "
            "run together (one decode per clip); run other stages one at a time"
        )
    stages.sort(key=lambda stage: SHARED_DECODE_MEMBERS.index(stage.name))
    if finalize_only:
        for stage in stages:
            code = execute(stage, args, finalize_only=True, alone=False)
            if code != EXIT_OK:
                return code
        return EXIT_OK
    return _execute_together(stages, args)


def _runs(stage: type[Stage], args: argparse.Namespace, alone: bool = True) -> list[list[str]]:
    """The `--set` overrides of each run of `stage`: with --used-feature-sets, one per feature set
    something reads (the stage's own `used_feature_sets`: rgb); otherwise one run as asked. Beside rgb
    (`alone` False: pose rgb), a stage without feature sets runs once."""
    from pipeline.config import ParamError, load_params

    used = getattr(stage, "used_feature_sets", None)
    if not getattr(args, "used_feature_sets", False) or (used is None and not alone):
        return [[]]
    if used is None:
        raise ParamError(f"--used-feature-sets is an rgb option; {stage.name} has no feature sets")
    return [[f"rgb.feature_set={name}"] for name in used(load_params(args.params, _overrides(args)))]


def _with(args: argparse.Namespace, extra: list[str]) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "overrides": [*(args.overrides or []), *extra]})


def _execute_together(stages: list[type[Stage]], args: argparse.Namespace) -> int:
    from pipeline.config import load_params
    from pipeline.runner.plan import ShardSpec
    from pipeline.runner.run import RunOptions
    from pipeline.runner.together import Member, run_together
    from pipeline.runner.view import CoverageError

    members = []
    for stage in stages:
        for extra in _runs(stage, args, alone=False):
            overrides = _overrides(_with(args, extra))
            options = RunOptions(
                args.params,
                overrides,
                ShardSpec.parse(getattr(args, "shard", None)),
                retry_failed=getattr(args, "retry_failed", False),
                progress=not getattr(args, "no_progress", False),
            )
            members.append(Member(stage, load_params(args.params, overrides), options))
    try:
        result = run_together(members, SHARED_DECODE_PROCESSOR)
    except CoverageError as err:
        print(f"seds: error: {err}", file=sys.stderr)
        return EXIT_COVERAGE
    for summary in result.members:
        print(summary.line(), flush=True)
    print(result.line(), flush=True)
    for member, summary in zip(members, result.members):
        code = _failures_exit(member.params, summary)
        if code != EXIT_OK:
            return code
    return EXIT_OK


def execute(stage: type[Stage], args: argparse.Namespace, finalize_only: bool = False, alone: bool = True) -> int:
    for extra in _runs(stage, args, alone):
        code = _execute(stage, _with(args, extra), finalize_only)
        if code != EXIT_OK:
            return code
    return EXIT_OK


def _execute(stage: type[Stage], args: argparse.Namespace, finalize_only: bool) -> int:
    from pipeline.config import load_params
    from pipeline.runner.plan import ShardSpec
    from pipeline.runner.run import RunOptions, run_stage
    from pipeline.runner.view import CoverageError

    overrides = _overrides(args)
    params = load_params(args.params, overrides)
    shard = ShardSpec.parse(getattr(args, "shard", None))
    options = RunOptions(
        args.params,
        overrides,
        shard,
        retry_failed=getattr(args, "retry_failed", False),
        finalize_only=finalize_only,
        progress=not getattr(args, "no_progress", False),
    )
    try:
        summary = run_stage(stage, params, options)
    except CoverageError as err:
        print(f"seds: error: {err}", file=sys.stderr)
        return EXIT_COVERAGE
    print(summary.line(), flush=True)
    return _failures_exit(params, summary)


def _failures_exit(params, summary) -> int:
    """EXIT_FAILURES when every item of the run failed (a stage that produced nothing), or more failed
    than runtime.max_failures allows; the message names the reasons and where each failure is listed."""
    coverage = summary.coverage
    items = summary.total
    reasons = ", ".join(
        f"{reason}: {n}" for reason, n in sorted((coverage.failed if coverage else summary.failed_now).items())
    )
    listing = f"seds cache failures {summary.stage} lists each with its message"
    if coverage is not None and items > coverage.skipped and coverage.ok == 0:
        upstream = (
            f"{coverage.upstream_failed} skipped because their upstream item failed" if coverage.upstream_failed else ""
        )
        print(
            f"seds: {summary.stage} produced no item: all {items} failed "
            f"({'; '.join(filter(None, [reasons, upstream]))}); {listing}",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    allowed = params.runtime.failures_allowed(items)
    if allowed is not None and summary.failed > allowed:
        limit = params.runtime.max_failures
        print(
            f"seds: {summary.failed} of {items} item(s) failed ({reasons}), more than runtime.max_failures = {limit}"
            f"{f' ({allowed} of {items})' if isinstance(limit, float) else ''}; {listing}",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    return EXIT_OK


def stage_main(*stages: type[Stage], argv: list[str] | None = None) -> int:
    """`python -m stages.<name> [options]` (the DVC stages): the same as `seds run <stages...> [options]`.
    The entry point imports its stage classes, so the DVC stage's code dependencies are what it imports."""
    name = "extract" if len(stages) > 1 else stages[0].name
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}", description=RUN_HELP)
    add_run_options(parser)
    parser.add_argument("--finalize", action="store_true", help="only check coverage and write the view(s)")
    args = parser.parse_args(argv)
    return guarded(lambda a: execute_stages(list(stages), a, finalize_only=a.finalize))(args)


def _named(args: argparse.Namespace, finalize_only: bool = False) -> int:
    return execute_stages([item_stage(name) for name in args.stage], args, finalize_only)


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="run an item stage (probe, pose, select, rgb, ...); pose rgb: one decode", description=RUN_HELP
    )
    run.add_argument(
        "stage", nargs="+", choices=sorted(ITEM_STAGES), help="the stage; or pose rgb: both over one decode per clip"
    )
    add_run_options(run)
    run.set_defaults(func=guarded(_named))

    fin = subparsers.add_parser(
        "finalize",
        help="after sharded runs: check coverage, write the stage view",
        description="Check that every row of the input view is in the store or in the failures "
        "table, then write manifests/<stage>.parquet (which DVC records).",
    )
    fin.add_argument("stage", nargs="+", choices=sorted(ITEM_STAGES), help="the stage (or pose rgb: both)")
    add_params_options(fin)
    add_feature_sets_option(fin)
    fin.set_defaults(func=guarded(lambda a: _named(a, finalize_only=True)))
