"""Concurrency (issue 7, case 3): two processes run the same stage over the same rows of one store at
once, as two array tasks given the same shard by mistake, and both finalize. The store is never
corrupt, no key is recorded twice, and finalize is idempotent (the view equals a single run's bytes)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.store.layout import stage_dirs

pytestmark = pytest.mark.faults

SEDS = str(Path(sys.executable).parent / "seds")


def test_two_runs_of_one_shard_at_once_record_each_key_once(project, tmp_path, capsys):
    single = tmp_path / "single"
    shutil.copytree(project, single)
    args = ["run", "gt_keypoints", "--no-progress", "--set", "runtime.shard_items=1"]
    both = [subprocess.Popen([SEDS, *args], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in both]
    assert [r[0] for r in results] == [0, 0], results
    computed = [int(re.search(r"(\d+) computed", out).group(1)) for _, out, _ in results]
    assert sum(computed) > 12, computed  # both planned before either published: they really raced
    (stage_dir,) = stage_dirs(project / "cache", "gt_keypoints")
    keys = [k for part in sorted(stage_dir.index.glob("*.parquet")) for k in pq.read_table(part).column("item_key").to_pylist()]
    assert len(keys) == len(set(keys)) == 12
    referenced = {s for part in stage_dir.index.glob("*.parquet") for s in pq.read_table(part).column("shard").to_pylist()}
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
