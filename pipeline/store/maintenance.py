"""`seds cache verify [--repair] | stats | gc`: checking, repairing, sizing and pruning the store."""

from __future__ import annotations

import json
import shutil
import time
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
    bad_shards: dict[str, list[str]] = field(default_factory=dict)  # shard -> what is wrong with its items
    unreferenced_shards: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)
    recorded_twice: int = 0  # keys two index parts hold: harmless (readers take the first), counted

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
                report.bad_shards.setdefault(row.shard, []).append(str(err))
            report.items += 1
    report.recorded_twice = len(index.rows.recorded_twice)
    referenced = {row.shard for row in index.rows.values()}
    for shard in published_files(stage_dir.shards, ".h5"):
        if shard.name not in referenced:
            report.unreferenced_shards.append(shard.name)
        else:
            try:
                with h5py.File(shard, "r", locking=False):
                    pass
            except OSError as err:
                report.problems.append(f"shard {shard} does not open as HDF5: {err}")
                report.bad_shards.setdefault(shard.name, []).append(f"does not open as HDF5: {err}")
    report.temporaries = sorted(
        p.name
        for d in (stage_dir.shards, stage_dir.index, stage_dir.failures)
        if d.is_dir()
        for p in d.iterdir()
        if p.name.startswith(TMP_PREFIX)
    )
    return report


def quarantine(stage_dir: StageDir, report: VerifyReport) -> Path | None:
    """Move the bad shards and the index parts that reference them to `<fingerprint>/quarantine/<time>/`
    with REASON.json, so their items count as missing and the next run recomputes them. Nothing is
    deleted: the files can be inspected or moved back. Returns the quarantine folder (None: nothing bad)."""
    if not report.bad_shards:
        return None
    index = StageIndex.load(stage_dir)
    shards, parts = set(report.bad_shards), set()
    while True:  # a part that names a bad shard goes, and so does every shard such a part names
        parts = {r.part for r in index.rows.values() if r.shard in shards}
        more = {r.shard for r in index.rows.values() if r.part in parts} - shards
        if not more:
            break
        shards |= more
    target = stage_dir.path / "quarantine" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    (target / "shards").mkdir(parents=True, exist_ok=True)
    (target / "index").mkdir(exist_ok=True)
    items = {r.item_key: r.sample_id for r in index.rows.values() if r.part in parts}
    reason = {
        "shards": {s: report.bad_shards.get(s, ["its index part is quarantined"]) for s in sorted(shards)},
        "index_parts": sorted(parts),
        "items": items,
    }
    (target / "REASON.json").write_text(json.dumps(reason, indent=2, sort_keys=True) + "\n")
    for part in sorted(parts):  # index first: an item is never listed while its shard is gone
        shutil.move(stage_dir.index / part, target / "index" / part)
    for shard in sorted(shards):
        if (stage_dir.shards / shard).exists():
            shutil.move(stage_dir.shards / shard, target / "shards" / shard)
    return target


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
        out.append(
            StageStats(
                stage_dir.stage,
                stage_dir.fingerprint,
                len(index),
                len(failed),
                len(published_files(stage_dir.shards, ".h5")),
                _tree_bytes(stage_dir.path),
            )
        )
    return out


def garbage_collect(root: Path, keep: set[tuple[str, str]], dry_run: bool = True) -> list[StageDir]:
    """Remove fingerprint directories that no view references. `keep` holds (stage, fingerprint)."""
    doomed = [d for d in stage_dirs(root) if (d.stage, d.fingerprint) not in keep]
    if not dry_run:
        for stage_dir in doomed:
            shutil.rmtree(stage_dir.path)
    return doomed
