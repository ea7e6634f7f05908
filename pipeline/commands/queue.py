"""`seds queue slurm <stage> --shards N`: ready-to-submit SLURM array scripts for one stage (or for pose
and rgb together, over one decode per clip)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.common import EXIT_OK, guarded
from pipeline.commands.item_stages import ITEM_STAGES, SHARED_DECODE_MEMBERS, item_stage, shared_decode


def slurm(args: argparse.Namespace) -> int:
    from pipeline.commands.slurm import SlurmOptions, write_slurm
    from pipeline.config import ParamError

    stages = list(dict.fromkeys(args.stage))
    if len(stages) > 1 and not shared_decode(stages):
        raise ParamError(
            f"stages {' '.join(stages)}: only {' and '.join(SHARED_DECODE_MEMBERS)} are queued together "
            "(one decode per clip)"
        )
    uses_gpu = any(item_stage(s).uses_gpu for s in stages) if args.gpus is None else args.gpus > 0
    opts = SlurmOptions(
        shards=args.shards,
        time=args.time,
        cpus=args.cpus,
        mem=args.mem,
        gpus=args.gpus if args.gpus is not None else 1,
        partition=args.partition,
        account=args.account,
        max_parallel=args.max_parallel,
        log_dir=args.log_dir,
        venv=args.venv,
        params=args.params,
    )
    written = write_slurm(stages, Path.cwd(), opts, uses_gpu, Path(args.out_dir))
    print("wrote " + ", ".join(str(p) for p in written))
    print(
        f"submit with: {written[2]}   (array of {args.shards} {' + '.join(stages)} shards, then finalize + dvc commit)"
    )
    return EXIT_OK


def register(subparsers) -> None:
    queue = subparsers.add_parser("queue", help="write batch-queue scripts (SLURM array jobs) for one stage")
    sub = queue.add_subparsers(dest="queue_command", required=True)
    s = sub.add_parser(
        "slurm",
        help="an sbatch array script, its finalize step and a submit script",
        description="Write runs/queue/<stage>.sbatch (one array task per shard: "
        "`seds run <stage> --shard $SLURM_ARRAY_TASK_ID/N`), <stage>-finalize.sbatch "
        "(`seds finalize <stage>` + `dvc commit`) and <stage>-submit.sh (array, then "
        "finalize with --dependency=afterany). `seds queue slurm pose rgb` queues both "
        "over one decode per clip as extract*.sbatch and commits the DVC stage extract.",
    )
    s.add_argument("stage", nargs="+", choices=sorted(ITEM_STAGES), help="the stage, or pose rgb")
    s.add_argument("--shards", type=int, required=True, help="number of array tasks")
    s.add_argument("--time", default="04:00:00", help="time limit per task (default: %(default)s)")
    s.add_argument("--cpus", type=int, default=8, help="CPUs per task (default: %(default)s)")
    s.add_argument("--mem", default="32G", help="memory per task (default: %(default)s)")
    s.add_argument("--gpus", type=int, help="GPUs per task (default: 1 for GPU stages, 0 otherwise)")
    s.add_argument("--partition")
    s.add_argument("--account")
    s.add_argument("--max-parallel", type=int, help="at most this many tasks at once (%%N in --array)")
    s.add_argument("--log-dir", default="runs/queue/logs")
    s.add_argument("--out-dir", default="runs/queue")
    s.add_argument("--venv", default=".venv")
    s.add_argument("--params", default="params.yaml")
    s.set_defaults(func=guarded(slurm))
