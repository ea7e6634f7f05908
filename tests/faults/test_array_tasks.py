"""Array tasks on a slow shared filesystem without locks (issue 18): 16 `seds run STAGE --shard I/16`
processes at once on one store, for probe, gt_keypoints, select and `pose rgb`, as a batch queue starts
them, with the project (store, views and clips) on a FUSE passthrough that delays every open and read
and refuses every lock with ENOLCK, as an NFS mount without lockd does (tests/slowfs.py).

Shown, from the filesystem's own log of who opened what: no task fails; nothing asks for a lock (so no
task can wait on another's); each task opens only its own clips (hashing and decoding); `seds finalize`
reads no clip and sees every item exactly once. Three `pose rgb` tasks are SIGKILLed after their first
published item and run again: they compute exactly what they had not published, no key is stored
twice, and no temporary file is left in the store.

Without FUSE (no /dev/fuse, no fusermount3, no libfuse3) the test skips saying so; CI sets
SEDS_REQUIRE_FUSE=1 (.ci/run installs fuse3), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main
from pipeline.runner.plan import ShardSpec
from slowfs import TAG, fuse_missing, mounted_slowfs, read_log
from tests_support import ROOT

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SEDS = str(Path(sys.executable).parent / "seds")
TASKS = 16
REQUIRE_FUSE = "SEDS_REQUIRE_FUSE"


@pytest.fixture(scope="module")
def fuse_ok() -> None:
    reason = fuse_missing()
    if reason is not None:
        message = f"needs a FUSE mount for the slow lockless filesystem: {reason}"
        if os.environ.get(REQUIRE_FUSE) == "1":
            pytest.fail(f"{message} ({REQUIRE_FUSE}=1: this run may not skip it)")
        pytest.skip(message)


def _params() -> dict:
    """The repository's sample params at test sizes: 48 clips (3 per task on average), random weights."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["runtime"].update(
        scheduler="synchronous",
        threads_per_worker=1,
        chunk_items=2,
        max_failures=0,
        decode_timeout_s=120,
        device="cpu",
        decoder="cpu",
    )
    params["sample"].update(
        sentences=16,
        renders=["train", "val", "test"],
        width=96,
        height=72,
        gloss_frames=4,
        min_glosses=2,
        max_glosses=2,
    )
    # every split (the sample poses its test clips only): each task poses all of its own clips
    params["pose"].update(splits=None, frames="uniform", frames_value=2, batch_size=4, chunk_frames=4)
    params["rgb"].update(window=4, num_windows=2, size=32, resize=36, batch_size=4, decoders=1, prefetch=1)
    return params


def _tasks(stage: list[str], project: Path, indices: range | list[int], *options: str) -> dict[int, subprocess.Popen]:
    """Start one array task per index, all at once, each tagged for the filesystem's log."""
    return {
        i: subprocess.Popen(
            [SEDS, "run", *stage, "--shard", f"{i}/{TASKS}", "--no-progress", *options],
            cwd=project,
            env={**os.environ, TAG: f"{'+'.join(stage)}-{i}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in indices
    }


def _finish(runs: dict[int, subprocess.Popen], timeout_s: float = 600) -> dict[int, str]:
    outputs = {}
    for i, run in runs.items():
        out, err = run.communicate(timeout=timeout_s)
        assert run.returncode == 0, f"task {i}: exit {run.returncode}\n{out}\n{err}"
        outputs[i] = out
    return outputs


def _finalize(stage: list[str], project: Path) -> str:
    done = subprocess.run(
        [SEDS, "finalize", *stage],
        cwd=project,
        env={**os.environ, TAG: "finalize"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _finalized(project: Path, stage: str, out: str) -> None:
    """The view covers all 48 rows, each once, each stored."""
    assert re.search(rf"{stage}: 48 items: 0 computed, 0 reused, 0 failed", out), out
    view = pq.read_table(project / f"manifests/{stage}.parquet").to_pylist()
    assert len(view) == len({r["sample_id"] for r in view}) == 48
    assert {r[f"{stage}_status"] for r in view} == {"ok"}


def _index_parts(store: Path, stage: str, pattern: str = "*.parquet") -> list[Path]:
    """Published index parts (pathlib's glob also matches the `.tmp-` names of parts being written)."""
    return [p for p in store.glob(f"{stage}/*/index/{pattern}") if not p.name.startswith(".tmp-")]


def _index_keys(store: Path, stage: str) -> list[str]:
    return [k for part in _index_parts(store, stage) for k in pq.read_table(part).column("item_key").to_pylist()]


def _published_by(store: Path, stage: str, pid: int) -> int:
    return sum(pq.read_metadata(part).num_rows for part in _index_parts(store, stage, f"*_{pid}_*.parquet"))


def test_sixteen_array_tasks_on_a_slow_lockless_filesystem(fuse_ok, tmp_path, chdir):
    backing, mount, log = tmp_path / "backing", tmp_path / "mount", tmp_path / "slowfs.jsonl"
    prepared = backing / "project"
    prepared.mkdir(parents=True)
    (prepared / "params.yaml").write_text(yaml.safe_dump(_params(), sort_keys=False))
    chdir(prepared)
    assert main(["sample"]) == 0 and main(["manifest"]) == 0
    rows = pq.read_table(prepared / "manifests/manifest.parquet").to_pylist()
    assert len(rows) == 48
    clip_of = {f"/project/data/sample/{r['video_path']}": r["sample_id"] for r in rows}
    owner = {sid: next(i for i in range(TASKS) if ShardSpec(i, TASKS).owns(sid)) for sid in clip_of.values()}
    clips_of_task = defaultdict(set)
    for path, sid in clip_of.items():
        clips_of_task[owner[sid]].add(path)

    with mounted_slowfs(backing, mount, log, open_ms=30, read_ms=3):
        project = mount / "project"
        store = project / "cache"
        chdir(project)
        for stage in (["probe"], ["gt_keypoints"], ["select"]):
            _finish(_tasks(stage, project, range(TASKS)))
            _finalized(project, stage[0], _finalize(stage, project))
            keys = _index_keys(store, stage[0])
            assert len(keys) == len(set(keys)) == 48  # every item once

        # pose + rgb over one decode per clip; three tasks killed after their first published item
        victims = sorted(sorted(range(TASKS), key=lambda i: -len(clips_of_task[i]))[:3])
        assert all(len(clips_of_task[i]) >= 3 for i in victims)
        one_per_shard = ("--set", "runtime.shard_items=1")  # each item published as it is done
        runs = _tasks(["pose", "rgb"], project, range(TASKS), *one_per_shard)
        published_before_kill = {}
        deadline = time.monotonic() + 600
        while len(published_before_kill) < len(victims) and time.monotonic() < deadline:
            for i in victims:
                if i not in published_before_kill and _published_by(store, "pose", runs[i].pid):
                    os.kill(runs[i].pid, signal.SIGKILL)
                    runs[i].wait()
                    published_before_kill[i] = _published_by(store, "pose", runs[i].pid)
            time.sleep(0.02)
        assert sorted(published_before_kill) == victims, "a victim finished or never published before the kill"
        assert all(0 < n < len(clips_of_task[i]) for i, n in published_before_kill.items()), published_before_kill
        _finish({i: run for i, run in runs.items() if i not in victims})
        reruns = _finish(_tasks(["pose", "rgb"], project, victims, *one_per_shard))
        for i, out in reruns.items():
            own, done = len(clips_of_task[i]), published_before_kill[i]
            assert re.search(
                rf"pose shard {i}/{TASKS}: {own} items: {own - done} computed, {done} reused, 0 failed", out
            ), out
        out = _finalize(["pose", "rgb"], project)
        for stage in ("pose", "rgb"):
            _finalized(project, stage, out)
            keys = _index_keys(store, stage)
            assert len(keys) == len(set(keys)) == 48
        left = [p for p in store.rglob("*") if p.name.startswith(".tmp-")]
        assert not left, left
        chdir(tmp_path)  # out of the mount before it goes

    events = read_log(log)
    assert not [e for e in events if e["event"] in ("lock", "flock")]  # nobody asked for a lock
    opened = defaultdict(set)
    for e in events:
        if e["event"] == "open" and e["path"] in clip_of:
            opened[e["tag"]].add(e["path"])
    for i in range(TASKS):
        assert opened.get(f"probe-{i}", set()) == clips_of_task[i]  # read (hashed, decoded) its own, no other
        assert opened.get(f"pose+rgb-{i}", set()) <= clips_of_task[i]
        assert not opened.get(f"gt_keypoints-{i}") and not opened.get(f"select-{i}")
    assert set().union(*(opened.get(f"pose+rgb-{i}", set()) for i in range(TASKS))) == set(clip_of)
    assert not opened.get("finalize")  # the hash memo the tasks published answers from the stat
