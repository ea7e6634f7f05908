"""Batch-queue scripts: one stage as a SLURM array job, plus the finalize step that hands it to DVC.

DVC runs one stage at a time in a workspace, so an array job bypasses it: each task runs
`seds run <stage> --shard $SLURM_ARRAY_TASK_ID/N` straight into the shared store (one writer per
shard file, so tasks never collide), and a finalize job, started after the array, checks coverage,
writes the stage's view and records the stage in dvc.lock with `dvc commit` (no recomputation). A later
`dvc repro` then sees the stage as up to date. The scripts are plain bash with #SBATCH comments, so
they also run by hand (set SLURM_ARRAY_TASK_ID).

pose and rgb are one DVC stage, `extract` (one decode per clip): `seds queue slurm pose rgb` queues both
over one decode and commits `extract`; either one queued alone finalizes its view but cannot commit
`extract` by itself (the other's outputs may be stale), so its finalize script says so instead.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from pipeline.commands.item_stages import SHARED_DECODE_MEMBERS, SHARED_DVC_STAGE, shared_decode


@dataclass(frozen=True)
class SlurmOptions:
    shards: int
    time: str = "04:00:00"
    cpus: int = 8
    mem: str = "32G"
    gpus: int = 1
    partition: str | None = None
    account: str | None = None
    max_parallel: int | None = None
    log_dir: str = "runs/queue/logs"
    venv: str = ".venv"
    params: str = "params.yaml"


def _header(name: str, opts: SlurmOptions, array: bool, gpus: int) -> list[str]:
    lines = [
        "#!/usr/bin/env bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --time={opts.time}",
        f"#SBATCH --cpus-per-task={opts.cpus}",
        f"#SBATCH --mem={opts.mem}",
    ]
    if array:
        limit = f"%{opts.max_parallel}" if opts.max_parallel else ""
        lines.append(f"#SBATCH --array=0-{opts.shards - 1}{limit}")
        lines += [
            f"#SBATCH --output={opts.log_dir}/{name}-%A_%a.out",
            f"#SBATCH --error={opts.log_dir}/{name}-%A_%a.err",
        ]
    else:
        lines += [f"#SBATCH --output={opts.log_dir}/{name}-%j.out", f"#SBATCH --error={opts.log_dir}/{name}-%j.err"]
    if gpus:
        lines.append(f"#SBATCH --gres=gpu:{gpus}")
    if opts.partition:
        lines.append(f"#SBATCH --partition={opts.partition}")
    if opts.account:
        lines.append(f"#SBATCH --account={opts.account}")
    return lines


def _commit_lines(stages: list[str]) -> list[str]:
    if shared_decode(stages):
        return [
            "# Record the finished stage in dvc.lock without recomputing it (dvc repro then skips it).",
            f"dvc commit --force {SHARED_DVC_STAGE}",
        ]
    if stages[0] in SHARED_DECODE_MEMBERS:
        return [
            f"# {stages[0]} is part of the DVC stage {SHARED_DVC_STAGE} (pose and rgb over one decode): queue",
            "# `seds queue slurm pose rgb` to have the finalize step commit it; alone, dvc.lock is left as it is.",
        ]
    return [
        "# Record the finished stage in dvc.lock without recomputing it (dvc repro then skips it).",
        f"dvc commit --force {stages[0]}",
    ]


def render_slurm(stages: str | list[str], project: Path, opts: SlurmOptions, uses_gpu: bool) -> dict[str, str]:
    """The array script, the finalize script and a submit script (array, then finalize afterany). `stages`:
    one item stage, or pose and rgb (run together over one decode per clip, scripts named `extract`)."""
    stages = [stages] if isinstance(stages, str) else list(stages)
    shared = len(stages) > 1
    stage = SHARED_DVC_STAGE if shared else stages[0]
    names = " ".join(stages)
    project_q = shlex.quote(str(project.resolve()))
    prologue = [
        "set -euo pipefail",
        f"cd {project_q}",
        f"source {shlex.quote(opts.venv)}/bin/activate",
        f"mkdir -p {shlex.quote(opts.log_dir)}",
    ]
    gpus = opts.gpus if uses_gpu else 0
    device = "cuda" if gpus else "cpu"
    sets = " --used-feature-sets" if "rgb" in stages else ""  # as dvc.yaml's extract stage: every I3D the trainer mixes
    array = (
        _header(f"seds-{stage}", opts, True, gpus)
        + [""]
        + prologue
        + [
            ': "${SLURM_ARRAY_TASK_ID:?run as a SLURM array task, or set SLURM_ARRAY_TASK_ID by hand}"',
            "# One task = one shard; tasks write their own shard files into the store, never each other's.",
            f'seds run {names} --params {shlex.quote(opts.params)} --shard "$SLURM_ARRAY_TASK_ID/{opts.shards}" '
            f"--scheduler synchronous --device {device} --no-progress{sets}",
            "",
        ]
    )
    finalize = (
        _header(
            f"seds-{stage}-finalize",
            SlurmOptions(**{**opts.__dict__, "cpus": 2, "mem": "8G", "time": "00:30:00"}),
            False,
            0,
        )
        + [""]
        + prologue
        + [
            "# Coverage check (every row stored or failed with a reason) and the stage view; exit 3 names",
            "# missing samples when a task died: resubmit those shards, then this script again.",
            f"seds finalize {names} --params {shlex.quote(opts.params)}{sets}",
            *_commit_lines(stages),
            "",
        ]
    )
    submit = [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        f"cd {project_q}",
        f"mkdir -p {shlex.quote(opts.log_dir)}  # SLURM does not create log folders",
        f"job=$(sbatch --parsable runs/queue/{stage}.sbatch)",
        f"sbatch --dependency=afterany:$job runs/queue/{stage}-finalize.sbatch",
        f'echo "submitted array job $job ({opts.shards} shards of {names}) and its finalize step"',
        "",
    ]
    return {
        f"{stage}.sbatch": "\n".join(array),
        f"{stage}-finalize.sbatch": "\n".join(finalize),
        f"{stage}-submit.sh": "\n".join(submit),
    }


def write_slurm(
    stages: str | list[str], project: Path, opts: SlurmOptions, uses_gpu: bool, out_dir: Path
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_slurm(stages, project, opts, uses_gpu).items():
        path = out_dir / name
        path.write_text(text)
        path.chmod(0o755)
        written.append(path)
    return written
