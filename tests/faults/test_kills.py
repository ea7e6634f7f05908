"""Kills (issue 7, case 2): `seds run pose`, `seds run rgb` and `seds train` are SIGKILLed (the whole
process group, as a batch system's preemption does) at seeded random points of real runs. The rerun
completes; the store then equals an uninterrupted run's (same keys, same checksums), no temporary was
ever indexed as a shard, `seds cache verify` is clean; train resumes from its last checkpoint and ends
with the uninterrupted run's weights."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.cli import main
from pipeline.config import load_params
from pipeline.store.index import StageIndex
from pipeline.store.layout import TMP_PREFIX, stage_dirs
from pipeline.train.checkpoint import load_checkpoint
from tests_support import SMALL_POSE as POSE
from tests_support import SMALL_RGB as RGB

pytestmark = pytest.mark.faults

SEDS = str(Path(sys.executable).parent / "seds")
# One seed per stage (3 kills, 3 kill points) keeps the suite near a minute; add seeds to hunt.
SEEDS = {"pose": (3,), "rgb": (11,), "train": (7,)}


def set_params(root: Path, **sections) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def content(root: Path, stage: str) -> dict[str, list[tuple[str, str]]]:
    (stage_dir,) = stage_dirs(root / "cache", stage)
    return {k: [(a["name"], a["checksum"]) for a in r.arrays] for k, r in StageIndex.load(stage_dir).rows.items()}


def kill_when(proc: subprocess.Popen, ready, delay: float, what: str) -> None:
    """SIGKILL the process group once `ready()` holds, plus `delay` seconds; it must still be running."""
    deadline = time.monotonic() + 180
    while not ready():
        assert proc.poll() is None, f"{what} ended before the kill point"
        assert time.monotonic() < deadline, f"{what}: kill point never reached"
        time.sleep(0.02)
    time.sleep(delay)
    assert proc.poll() is None, f"{what} ended before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("stage, section", [("pose", POSE), ("rgb", RGB)])
def test_killed_item_stage_reruns_to_the_uninterrupted_store(project, tmp_path, chdir, capsys, stage, section):
    set_params(project, runtime={"threads_per_worker": 1, "shard_items": 2}, **{stage: section})
    reference = tmp_path / "reference"
    shutil.copytree(project, reference)
    chdir(reference)
    assert main(["run", stage, "--no-progress"]) == 0
    expected = content(reference, stage)
    assert len(expected) == 12
    for seed in SEEDS[stage]:
        rng = random.Random(seed)
        parts, delay = rng.randint(0, 3), rng.uniform(0.0, 0.5)  # of 6 shards: at least 3 still to come
        killed = tmp_path / f"killed-{seed}"
        shutil.copytree(project, killed)
        index = killed / "cache" / stage
        proc = subprocess.Popen(
            [SEDS, "run", stage, "--no-progress"],
            cwd=killed,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kill_when(proc, lambda: len([p for p in index.glob("*/index/*.parquet")]) >= parts, delay, f"seed {seed}")
        (stage_dir,) = stage_dirs(killed / "cache", stage)
        partial = StageIndex.load(stage_dir)
        assert len(partial) < 12, f"seed {seed}"
        assert not [r for r in partial.rows.values() if r.shard.startswith(TMP_PREFIX)]
        chdir(killed)
        capsys.readouterr()
        assert main(["cache", "verify", stage]) == 0, f"seed {seed}: {capsys.readouterr().out}"
        assert main(["run", stage, "--no-progress"]) == 0
        assert f"{12 - len(partial)} computed, {len(partial)} reused" in capsys.readouterr().out
        assert content(killed, stage) == expected, f"seed {seed}"
        assert not [
            p for d in (stage_dir.shards, stage_dir.index) for p in d.iterdir() if p.name.startswith(TMP_PREFIX)
        ]
        assert main(["cache", "verify", stage]) == 0


def _train_support():
    spec = importlib.util.spec_from_file_location(
        "faults_train_support", Path(__file__).parents[1] / "train" / "train_support.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_killed_train_resumes_from_its_last_checkpoint(tmp_path, chdir):
    from pipeline.train.loop import train

    support = _train_support()
    template = tmp_path / "template"
    support.build_store(template)
    support.write_project_params(
        template, {"eval_every": 0, "epochs": 2, "checkpoint_every": 1, "out": "runs/t", "sampling": "clip"}
    )
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    chdir(reference)
    full = train(load_params(reference / "params.yaml"))
    assert full.step == 6
    expected = torch.load(reference / "runs/t/model.pt", weights_only=True)["model"]
    for seed in SEEDS["train"]:
        rng = random.Random(seed)
        saves, delay = rng.randint(1, 3), rng.uniform(0.0, 0.1)
        killed = tmp_path / f"killed-{seed}"
        shutil.copytree(template, killed)
        last = killed / "runs/t/checkpoints/last.pt"
        seen: set[int] = set()

        def saved() -> bool:  # every checkpoint is a new file renamed over the last: count inodes
            try:
                seen.add(last.stat().st_ino)
            except FileNotFoundError:
                pass
            return len(seen) >= saves

        proc = subprocess.Popen(
            [SEDS, "train", "--no-progress"],
            cwd=killed,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kill_when(proc, saved, delay, f"train seed {seed}")
        step = load_checkpoint(last)["step"]  # the checkpoint on disk is whole, whatever the kill hit
        assert 0 < step < 6, f"seed {seed}"
        assert not (killed / "runs/t/model.pt").exists()
        chdir(killed)
        resumed = train(load_params(killed / "params.yaml"))
        assert resumed.resumed_from == step and resumed.step == 6, f"seed {seed}"
        got = torch.load(killed / "runs/t/model.pt", weights_only=True)["model"]
        assert got.keys() == expected.keys()
        for name, tensor in expected.items():
            torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6, msg=f"seed {seed}: {name}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_stop_a_stage_cleanly(project, chdir, capsys, signum):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) and a batch queue's SIGTERM end a run
    alike: one line saying what was kept, exit 128 + N, no traceback, no decoder child left behind;
    the finished items are stored and the rerun computes only the rest."""
    set_params(project, runtime={"threads_per_worker": 1, "shard_items": 2}, rgb=RGB)
    proc = subprocess.Popen(
        [SEDS, "run", "rgb", "--no-progress"],
        cwd=project,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    published = lambda: any(  # noqa: E731
        not part.name.startswith(TMP_PREFIX) for part in (project / "cache" / "rgb").glob("*/index/*.parquet")
    )
    deadline = time.monotonic() + 180
    while not published():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, (out, err)
    assert f"stopped by {signal.Signals(signum).name}: what was finished is kept" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10  # the decoder child dies with its parent (PR_SET_PDEATHSIG), a moment later
    while (
        survivors := subprocess.run(["pgrep", "-a", "-s", str(proc.pid)], capture_output=True, text=True).stdout.strip()
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not survivors, f"processes of the stopped run still alive: {survivors}"
    (stage_dir,) = stage_dirs(project / "cache", "rgb")
    assert not [p for p in stage_dir.path.rglob(f"{TMP_PREFIX}*")]  # a stop inside a publish removes its temporary
    kept = len(StageIndex.load(stage_dir))
    assert 2 <= kept < 12  # at least the published shard, and the items of the open one
    chdir(project)
    capsys.readouterr()
    assert main(["run", "rgb", "--no-progress"]) == 0
    assert f"{12 - kept} computed, {kept} reused" in capsys.readouterr().out
    assert main(["cache", "verify", "rgb"]) == 0
