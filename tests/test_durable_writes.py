"""Files that must survive a power cut are fsynced, then renamed, then their folder is fsynced: store
shards and index parts, and the trainer's checkpoints. Observed at the true boundary, os.fsync: each
call is resolved to the path its descriptor names (/proc/self/fd)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.fingerprint import StageFingerprint
from pipeline.store import Item, ShardWriter, StageDir
from pipeline.train.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def fsynced(monkeypatch) -> list[Path]:
    """Every path os.fsync is called on, in order (directories included)."""
    seen: list[Path] = []
    real = os.fsync

    def record(fd: int) -> None:
        seen.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def _synced_after_rename(seen: list[Path], final: Path) -> bool:
    """The file was synced (under its temporary name, beside it) and afterwards its folder was."""
    files = [i for i, p in enumerate(seen) if p.parent == final.parent and final.name in p.name]
    return bool(files) and final.parent in seen[files[-1] + 1 :]


def test_a_checkpoint_is_synced_then_its_folder(tmp_path, fsynced):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.arange(3.0)}, "step": 7})
    assert _synced_after_rename(fsynced, path), fsynced
    assert load_checkpoint(path)["step"] == 7
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left


def test_a_published_shard_and_its_index_part_are_synced_with_their_folders(tmp_path, fsynced):
    fp = StageFingerprint("pose", 1, {"model": "m"})
    stage_dir = StageDir(tmp_path, "pose", fp.digest)
    stage_dir.create(fp)
    with ShardWriter(stage_dir) as writer:
        writer.add(Item("key0", "sample0", {"keypoints": np.zeros((2, 133, 2), np.float32)}, {}, {}))
    shard = next(stage_dir.shards.glob("*.h5"))
    part = next(stage_dir.index.glob("*.parquet"))
    assert _synced_after_rename(fsynced, shard), fsynced
    assert _synced_after_rename(fsynced, part), fsynced
