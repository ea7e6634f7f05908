"""`seds cache verify | stats | gc`: checking, sizing and pruning the store."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from pipeline.store.index import StageIndex
from pipeline.store.layout import TMP_PREFIX, StageDir, published_files, stage_dirs
from pipeline.store.reader import CorruptItem, StageReader


@dataclass
class VerifyReport:
    stage_dir: StageDir
    items: int = 0
    problems: list[str] = field(default_factory=list)
    unreferenced_shards: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_stage(stage_dir: StageDir) -> VerifyReport:
    """Read every item back and check its checksum; list shards no index row references."""
    report = VerifyReport(stage_dir)
    index = StageIndex.load(stage_dir)
    with StageReader(stage_dir, index=index, verify=True) as reader:
        for key, row in sorted(index.rows.items()):
            try:
                reader.read(key)
            except CorruptItem as err:
                report.problems.append(str(err))
            report.items += 1
    referenced = {row.shard for row in index.rows.values()}
    for shard in published_files(stage_dir.shards, ".h5"):
        if shard.name not in referenced:
            report.unreferenced_shards.append(shard.name)
        else:
            try:
                with h5py.File(shard, "r"):
                    pass
            except OSError as err:
                report.problems.append(f"shard {shard} does not open as HDF5: {err}")
    report.temporaries = sorted(p.name for d in (stage_dir.shards, stage_dir.index, stage_dir.failures)
                                if d.is_dir() for p in d.iterdir() if p.name.startswith(TMP_PREFIX))
    return report


@dataclass
class StageStats:
    stage: str
    fingerprint: str
    items: int
    failures: int
    shards: int
    bytes: int


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stats(root: Path) -> list[StageStats]:
    out = []
    for stage_dir in stage_dirs(root):
        index = StageIndex.load(stage_dir)
        failed = {k for k in index.failures if not (k in index.rows)}
        out.append(StageStats(stage_dir.stage, stage_dir.fingerprint, len(index), len(failed),
                              len(published_files(stage_dir.shards, ".h5")), _tree_bytes(stage_dir.path)))
    return out


def garbage_collect(root: Path, keep: set[tuple[str, str]], dry_run: bool = True) -> list[StageDir]:
    """Remove fingerprint directories that no view references. `keep` holds (stage, fingerprint)."""
    doomed = [d for d in stage_dirs(root) if (d.stage, d.fingerprint) not in keep]
    if not dry_run:
        for stage_dir in doomed:
            shutil.rmtree(stage_dir.path)
    return doomed
