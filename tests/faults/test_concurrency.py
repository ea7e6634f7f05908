"""Concurrency (issue 7, case 3): two processes run the same stage over the same rows of one store at
once, as two array tasks given the same shard by mistake, and both finalize. The store is never
corrupt, no key is recorded twice, and finalize is idempotent (the view equals a single run's bytes).

The overlap is forced, not hoped for: each run keeps its items in one open shard until it ends, and the
test stops the first run (SIGSTOP) as soon as its shard is open, lets the second run finish and publish
every key, then lets the first one go on: both computed every row, and the first must then record
none of them. No lock is involved (the store takes none)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.commands.item_stages import item_stage
from pipeline.config import load_params
from pipeline.runner.plan import read_view
from pipeline.store.layout import StageDir

pytestmark = pytest.mark.faults

SEDS = str(Path(sys.executable).parent / "seds")


def _stage_dir(project: Path, name: str) -> StageDir:
    stage = item_stage(name)(load_params(project / "params.yaml"))
    upstream = read_view(project / "manifests", stage.upstream)[1].get(stage.upstream)
    return StageDir(project / "cache", name, stage.fingerprint(upstream).digest)


def _wait_for_open_shard(run: subprocess.Popen, stage_dir: StageDir, timeout_s: float = 120) -> None:
    """Until `run` has an open (temporary) shard in the store: it has planned and computed an item."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        names = [p.name for p in stage_dir.shards.iterdir()] if stage_dir.shards.is_dir() else []
        if any(name.startswith(".tmp-") and f"_{run.pid}_" in name for name in names):
            return
        if run.poll() is not None:
            pytest.fail(f"the run ended before it opened a shard: {run.communicate()}")
        time.sleep(0.02)
    pytest.fail(f"no open shard from the run within {timeout_s} s")


def test_two_runs_of_one_shard_at_once_record_each_key_once(project, tmp_path, capsys):
    single = tmp_path / "single"
    shutil.copytree(project, single)
    args = ["run", "gt_keypoints", "--no-progress", "--set", "runtime.shard_items=100"]
    stage_dir = _stage_dir(project, "gt_keypoints")

    def start() -> subprocess.Popen:
        return subprocess.Popen([SEDS, *args], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start()
    _wait_for_open_shard(first, stage_dir)
    os.kill(first.pid, signal.SIGSTOP)  # planned all 12 rows, published none
    try:
        second = start()
        assert second.wait(timeout=120) == 0, second.communicate()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    both = [first, second]
    results = [(p.wait(timeout=120), *p.communicate()) for p in both]
    assert [r[0] for r in results] == [0, 0], results
    computed = [int(re.search(r"(\d+) computed", out).group(1)) for _, out, _ in results]
    assert computed == [12, 12]  # each planned all 12 rows before the other published one
    keys = [
        k
        for part in sorted(stage_dir.index.glob("*.parquet"))
        for k in pq.read_table(part).column("item_key").to_pylist()
    ]
    assert len(keys) == len(set(keys)) == 12
    referenced = {
        s for part in stage_dir.index.glob("*.parquet") for s in pq.read_table(part).column("shard").to_pylist()
    }
    assert {p.name for p in stage_dir.shards.iterdir()} == referenced  # duplicates' shards removed, no temporaries
    capsys.readouterr()
    assert main(["cache", "verify", "gt_keypoints"]) == 0
    assert "12 items ok" in capsys.readouterr().out

    view = (project / "manifests/gt_keypoints.parquet").read_bytes()
    twice = [subprocess.Popen([SEDS, "finalize", "gt_keypoints"], cwd=project) for _ in range(2)]
    assert [p.wait(timeout=120) for p in twice] == [0, 0]
    assert main(["finalize", "gt_keypoints"]) == 0
    assert (project / "manifests/gt_keypoints.parquet").read_bytes() == view
    assert not [p for p in (project / "manifests").iterdir() if p.name.startswith(".tmp-")]

    os.chdir(single)
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    assert (single / "manifests/gt_keypoints.parquet").read_bytes() == view
