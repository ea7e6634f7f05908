"""The lab workflow around DVC: array jobs + finalize + dvc commit, remotes, tarballs, shared stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import TINY_PARAMS, dvc
from tests_support import tiny_clone as clone_with

VENV = Path(sys.executable).parents[1]


def tiny_clone(path: Path) -> Path:
    return clone_with(path, TINY_PARAMS)


def seds(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{VENV / 'bin'}:{os.environ['PATH']}")
    return subprocess.run([str(VENV / "bin" / "seds"), *args], cwd=project, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_slurm_array_shards_plus_finalize_equal_dvc_repro_and_dvc_skips_them(tmp_path):
    queued = tiny_clone(tmp_path / "queued")
    assert dvc(queued, "repro", "manifest").returncode == 0
    made = seds(queued, "queue", "slurm", "probe", "--shards", "2", "--venv", str(VENV))
    assert made.returncode == 0, made.stderr
    env = dict(os.environ)
    for task in ("0", "1"):  # what SLURM would run: the script itself, with the task id set
        run = subprocess.run(
            ["bash", "runs/queue/probe.sbatch"],
            cwd=queued,
            env={**env, "SLURM_ARRAY_TASK_ID": task},
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"probe shard {task}/2" in run.stdout
    fin = subprocess.run(["bash", "runs/queue/probe-finalize.sbatch"], cwd=queued, capture_output=True, text=True)
    assert fin.returncode == 0, fin.stdout + fin.stderr
    status = dvc(queued, "status", "probe")
    assert "up to date" in status.stdout, status.stdout
    again = dvc(queued, "repro", "probe")
    assert "Running stage 'probe'" not in again.stdout

    plain = tiny_clone(tmp_path / "plain")
    assert dvc(plain, "repro", "probe").returncode == 0
    assert (plain / "manifests/probe.parquet").read_bytes() == (queued / "manifests/probe.parquet").read_bytes()


def test_slurm_scripts_name_gpu_time_logs_and_shard(tmp_path, chdir):
    from pipeline.commands.slurm import SlurmOptions, render_slurm

    scripts = render_slurm(
        "rgb", tmp_path, SlurmOptions(shards=16, time="02:00:00", max_parallel=4, partition="gpu"), uses_gpu=True
    )
    array = scripts["rgb.sbatch"]
    for line in (
        "#SBATCH --array=0-15%4",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=02:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --output=runs/queue/logs/seds-rgb-%A_%a.out",
        'seds run rgb --params params.yaml --shard "$SLURM_ARRAY_TASK_ID/16" --scheduler synchronous --device cuda '
        "--no-progress --used-feature-sets",
    ):
        assert line in array
    assert "seds finalize rgb --params params.yaml --used-feature-sets" in scripts["rgb-finalize.sbatch"]
    assert "dvc commit" not in scripts["rgb-finalize.sbatch"]  # rgb alone is half of the DVC stage extract
    assert "--dependency=afterany:$job" in scripts["rgb-submit.sh"]
    pair = render_slurm(["pose", "rgb"], tmp_path, SlurmOptions(shards=16), uses_gpu=True)
    assert sorted(pair) == ["extract-finalize.sbatch", "extract-submit.sh", "extract.sbatch"]
    assert (
        'seds run pose rgb --params params.yaml --shard "$SLURM_ARRAY_TASK_ID/16" --scheduler synchronous '
        "--device cuda --no-progress --used-feature-sets"
    ) in pair["extract.sbatch"]
    assert "seds finalize pose rgb --params params.yaml --used-feature-sets" in pair["extract-finalize.sbatch"]
    assert "dvc commit --force extract" in pair["extract-finalize.sbatch"]
    cpu = render_slurm("probe", tmp_path, SlurmOptions(shards=2), uses_gpu=False)["probe.sbatch"]
    assert "--gres" not in cpu and "--device cpu" in cpu


@pytest.mark.slow
def test_dvc_push_then_pull_into_a_second_clone_computes_nothing(tmp_path):
    remote = tmp_path / "remote"
    first = tiny_clone(tmp_path / "first")
    for args in (("remote", "add", "-d", "lab", str(remote)), ("repro", "probe"), ("push",)):
        result = dvc(first, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    second = tiny_clone(tmp_path / "second")
    (second / "dvc.lock").write_bytes((first / "dvc.lock").read_bytes())  # as if committed and cloned
    # Only probe (and what it depends on) was pushed; pulling every stage would ask for outputs never made.
    for args in (("remote", "add", "-d", "lab", str(remote)), ("pull", "--with-deps", "probe")):
        result = dvc(second, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    repro = dvc(second, "repro", "probe")
    assert repro.returncode == 0 and "Running stage" not in repro.stdout, repro.stdout
    again = seds(second, "run", "probe", "--no-progress")
    assert "0 computed, 12 reused" in again.stdout
