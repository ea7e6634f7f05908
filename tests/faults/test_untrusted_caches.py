"""Untrusted caches (issue 7, case 6; issue 6 b): a poisoned read-only shared store and a damaged local
store, against the real select stage. Every bad item is detected, reported, recomputed and never used;
the shared store is never written to; nothing from a cache is ever unpickled."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main
from pipeline.store.index import INDEX_SCHEMA, StageIndex
from pipeline.store.layout import StageDir, stage_dirs

pytestmark = pytest.mark.faults


def set_params(root: Path, **sections) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def select_dir(root: Path) -> StageDir:
    (found,) = stage_dirs(root / "cache", "select")
    return found


def content(stage_dir: StageDir) -> dict[str, list[tuple[str, str, tuple[int, ...]]]]:
    """item key -> (array, checksum, shape) of every item: what 'the same store' means here."""
    return {
        k: [(a["name"], a["checksum"], tuple(a["shape"])) for a in r.arrays]
        for k, r in StageIndex.load(stage_dir).rows.items()
    }


def snapshot(root: Path) -> dict[str, tuple]:
    """Bytes, mtime, inode and mode of every path: root ignores permission bits, so a read-only store
    is checked by what is in it, not by whether writing was refused."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else None
        out[str(path.relative_to(root))] = (data, st.st_mtime_ns, st.st_ino, st.st_mode)
    return out


class Bomb:
    """Unpickling this creates `marker`: proof that someone unpickled cache content."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _shard_keys(stage_dir: StageDir, shard: str) -> set[str]:
    return {k for k, r in StageIndex.load(stage_dir).rows.items() if r.shard == shard}


def _first_shard(stage_dir: StageDir, which: int = 0) -> str:
    return sorted({r.shard for r in StageIndex.load(stage_dir).rows.values()})[which]


def poison_checksum(root: Path, marker: Path, which: int = 0) -> set[str]:
    """A lab-mate's buggy code rewrote one item's keypoints in place: valid HDF5, wrong bytes."""
    stage_dir = select_dir(root)
    row = next(r for r in StageIndex.load(stage_dir).rows.values() if r.shard == _first_shard(stage_dir, which))
    entry = row.array("keypoints")
    with h5py.File(stage_dir.shards / row.shard, "r+") as f:
        f["keypoints"][entry["offset"] : entry["offset"] + entry["length"]] += 1.0
    return {row.item_key}


def poison_past_end(root: Path, marker: Path) -> set[str]:
    """One index row points past its shard's end."""
    stage_dir = select_dir(root)
    part = sorted(stage_dir.index.glob("*.parquet"))[0]
    rows = pq.read_table(part).to_pylist()
    rows[0]["arrays"][0]["offset"] = 10**6
    pq.write_table(pq.read_table(part).from_pylist(rows, schema=INDEX_SCHEMA), part)
    return {rows[0]["item_key"]}


def poison_replaced_shard(root: Path, marker: Path) -> set[str]:
    """A shard replaced by a different, valid HDF5 file: a shard of the gt_keypoints stage."""
    stage_dir = select_dir(root)
    shard = _first_shard(stage_dir)
    (other,) = stage_dirs(root / "cache", "gt_keypoints")
    shutil.copyfile(sorted(other.shards.glob("*.h5"))[0], stage_dir.shards / shard)
    return _shard_keys(stage_dir, shard)


def poison_unexpected_dataset(root: Path, marker: Path) -> set[str]:
    """A shard that also holds a dataset we never write: a pickle (opaque bytes) that would run code."""
    stage_dir = select_dir(root)
    shard = _first_shard(stage_dir)
    with h5py.File(stage_dir.shards / shard, "r+") as f:
        f["payload"] = np.void(pickle.dumps(Bomb(marker)))
    (stage_dir.path / "payload.pkl").write_bytes(pickle.dumps(Bomb(marker)))
    return _shard_keys(stage_dir, shard)


POISONS = [poison_checksum, poison_past_end, poison_replaced_shard, poison_unexpected_dataset]


def _build(project: Path) -> dict:
    set_params(project, select={"source": "gt_keypoints"}, runtime={"shard_items": 4})
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    assert main(["run", "select", "--no-progress"]) == 0
    return content(select_dir(project))


@pytest.fixture
def read_only():
    """chmod -R a-w a tree; its write bits come back afterwards so the tmp folder can be removed."""
    trees = []

    def protect(root: Path) -> None:
        trees.append(root)
        for path in [root, *root.rglob("*")]:
            path.chmod(path.lstat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    yield protect
    for root in trees:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.lstat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize("poison", POISONS, ids=lambda p: p.__name__[len("poison_") :])
def test_poisoned_shared_store_item_is_rejected_recomputed_and_never_used(
    project, tmp_path, chdir, capsys, read_only, poison
):
    clean = _build(project)
    shared = project  # the lab-mate's project; its cache/ is the shared store
    mine = tmp_path / "mine"
    shutil.copytree(shared, mine, ignore=shutil.ignore_patterns("select.parquet"))
    shutil.rmtree(mine / "cache" / "select")
    set_params(mine, runtime={"shared_store": str(shared / "cache")})
    marker = tmp_path / "UNPICKLED"
    bad = poison(shared, marker)
    read_only(shared / "cache")
    before = snapshot(shared / "cache")
    capsys.readouterr()

    chdir(mine)
    assert main(["run", "select", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert f"{12 - len(bad)} reused" not in out  # nothing local to reuse: all came from shared or compute
    assert (
        f"{len(bad)} computed, 0 reused, {12 - len(bad)} from the shared store, {len(bad)} shared item(s) rejected"
        in out
    )
    rejected = [line for line in err.splitlines() if "shared store item rejected, recomputing" in line]
    assert len(rejected) == len(bad) and all(any(k in line for line in rejected) for k in bad)
    assert content(select_dir(mine)) == clean  # the recomputed items, never the shared store's bad bytes
    assert main(["cache", "verify", "select"]) == 0
    assert snapshot(shared / "cache") == before  # not a byte, mtime or inode changed in the shared store
    assert not marker.exists()


def test_damaged_local_store_is_quarantined_by_verify_repair_and_recomputed(project, capsys, tmp_path):
    clean = _build(project)
    stage_dir = select_dir(project)
    bad = poison_checksum(project, tmp_path / "x", which=1) | poison_unexpected_dataset(project, tmp_path / "UNPICKLED")
    capsys.readouterr()
    assert main(["cache", "verify", "select"]) == 1
    out = capsys.readouterr().out
    assert all(key in out for key in bad) and "not a plain number type" in out and "checksum mismatch" in out
    assert main(["cache", "verify", "select", "--repair"]) == 1
    assert "repaired: moved 2 bad shard(s)" in capsys.readouterr().out
    (quarantined,) = (stage_dir.path / "quarantine").iterdir()
    reason = yaml.safe_load((quarantined / "REASON.json").read_text())
    moved = set(reason["items"])  # every item of the two shards: the checksum one took its good shard-mates along
    assert bad < moved and len(moved) == 8 and len(list((quarantined / "shards").iterdir())) == 2
    bad = moved
    assert main(["cache", "verify", "select"]) == 0
    assert main(["run", "select", "--no-progress"]) == 0
    assert f"{len(bad)} computed, {12 - len(bad)} reused" in capsys.readouterr().out
    assert content(stage_dir) == clean
    assert not (tmp_path / "UNPICKLED").exists()


def test_unreadable_index_parts_name_the_file_and_a_shared_one_is_not_used(project, tmp_path, chdir, capsys, read_only):
    clean = _build(project)
    mine = tmp_path / "mine"
    shutil.copytree(project, mine, ignore=shutil.ignore_patterns("select.parquet"))
    shutil.rmtree(mine / "cache" / "select")
    set_params(mine, runtime={"shared_store": str(project / "cache")})
    part = sorted(select_dir(project).index.glob("*.parquet"))[0]
    part.write_bytes(b"PAR1 not really parquet")
    read_only(project / "cache")
    capsys.readouterr()

    assert main(["run", "select", "--no-progress"]) == 2  # our own store: stop, name the file
    assert str(part.relative_to(project)) in capsys.readouterr().err
    before = snapshot(project / "cache")  # with that failed run's record: the shared store's state from here
    chdir(mine)
    assert main(["run", "select", "--no-progress"]) == 0  # the shared store: ignore it, compute
    out, err = capsys.readouterr()
    assert "12 computed" in out and "not used, computing instead" in err and part.name in err
    assert content(select_dir(mine)) == clean
    assert snapshot(project / "cache") == before
    assert os.access(mine / "cache", os.W_OK)
