"""Disk full (issue 7, case 4): a store on a small tmpfs that fills up during a real select run. The
run stops with a message that says disk full, the store keeps exactly what it held before, and once
space is free the rerun completes. (The read-only shared store is in test_untrusted_caches.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main

pytestmark = pytest.mark.faults


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (a real file system that runs out of space), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def snapshot(root: Path) -> dict[str, tuple]:
    """Bytes, mtime and inode of every file, and every folder: what the store holds. (A folder's own
    mtime moves when a temporary is made and removed in it, which changes no content.)"""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def test_disk_full_leaves_the_store_as_it_was_and_says_so(project, small_disk, capsys):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["select"] = {"source": "gt_keypoints"}
    store = small_disk / "cache"
    shutil.copytree(project / "cache", store)
    params["runtime"]["store"] = str(store)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["run", "select", "--no-progress", "--shard", "0/2"]) == 0  # some items, STAGE.json, lock
    kept = int(re.search(r"(\d+) computed", capsys.readouterr().out).group(1))
    before = snapshot(store)
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 2 * free.f_frsize))  # two pages left
    capsys.readouterr()

    assert main(["run", "select", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "nothing partial was kept" in err, err
    after = snapshot(store)
    (record,) = [name for name in after.keys() - before.keys()]  # the failed run's record, and nothing else
    assert "/runs/" in record and json.loads(after[record][0])["status"] == "failed"
    assert "No space left" in json.loads(after[record][0])["error"]
    del after[record]
    assert after == before  # no temporary, no half shard, no index part

    filler.unlink()
    assert main(["run", "select", "--no-progress"]) == 0
    assert f"12 items: {12 - kept} computed, {kept} reused" in capsys.readouterr().out
    assert main(["cache", "verify", "select", "--params", "params.yaml"]) == 0
