"""Moving items between stores: verified copies, and single-file exports for people without a DVC remote.

Every copy reads the source with checksum verification and writes through our own ShardWriter, so a
damaged or tampered item is reported and skipped, never stored. Tarballs hold only a store's own
files (STAGE.json, HDF5 shards, Parquet index parts); extraction refuses anything else and any path
that would leave the target folder.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pipeline.fingerprint import StageFingerprint
from pipeline.store.index import StageIndex
from pipeline.store.layout import StageDir, StoreError, stage_dirs
from pipeline.store.reader import CorruptItem, StageReader
from pipeline.store.records import Item
from pipeline.store.writer import ShardWriter


@dataclass
class CopyReport:
    copied: int = 0
    already: int = 0
    rejected: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


def _fingerprint_of(stage_dir: StageDir) -> StageFingerprint:
    record = stage_dir.read_record()
    fp = StageFingerprint(record["stage"], record["version"], record["params"], record["artifacts"], record["upstream"])
    if fp.digest != stage_dir.fingerprint:
        raise StoreError(
            f"{stage_dir.stage_json} does not hash to its directory name {stage_dir.fingerprint}: "
            "the store was edited or is not ours"
        )
    return fp


def copy_verified(
    src: StageDir,
    dst: StageDir,
    keys: Iterable[str] | None = None,
    *,
    compression: str = "lzf",
    shard_items: int = 256,
    note: str = "",
) -> CopyReport:
    """Copy items (all, or `keys`) from src to dst (same stage and fingerprint), verifying checksums."""
    if (src.stage, src.fingerprint) != (dst.stage, dst.fingerprint):
        raise StoreError(f"cannot copy {src.stage}/{src.fingerprint} items into {dst.stage}/{dst.fingerprint}")
    report = CopyReport()
    if not dst.exists():
        dst.create(_fingerprint_of(src))
    src_index, dst_index = StageIndex.load(src), StageIndex.load(dst)
    wanted = list(src_index.rows) if keys is None else list(keys)
    with (
        StageReader(src, index=src_index, verify=True) as reader,
        ShardWriter(dst, compression=compression, max_items=shard_items) as writer,
    ):
        for key in wanted:
            if key in dst_index:
                report.already += 1
                continue
            if key not in src_index:
                report.absent.append(key)
                continue
            row = src_index.rows[key]
            try:
                arrays = reader.read(key)
            except CorruptItem as err:
                report.rejected.append(str(err))
                continue
            provenance = {**row.provenance, **({"copied_from": note} if note else {})}
            writer.add(Item(key, row.sample_id, arrays, row.attrs, provenance))
            report.copied += 1
    return report


def export_tarball(src: StageDir, keys: Iterable[str], tar_path: Path) -> CopyReport:
    """Write the given items of one stage fingerprint as a self-contained store in a tarball."""
    with tempfile.TemporaryDirectory() as tmp:
        packed = StageDir(Path(tmp), src.stage, src.fingerprint)
        packed.create(_fingerprint_of(src))
        report = copy_verified(src, packed, keys, note="")
        tar_path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tar_path, "w") as tar:
            tar.add(packed.path, arcname=f"{src.stage}/{src.fingerprint}", filter=_portable)
    return report


def _portable(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if info.name.split("/")[-1].startswith("."):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


_ALLOWED_SUFFIXES = {".h5", ".parquet", ".json"}


def import_tarball(tar_path: Path, store_root: Path, *, compression: str = "lzf") -> dict[str, CopyReport]:
    """Unpack a tarball from `export_tarball` to a scratch folder, then copy its items with checksum
    verification into `store_root`. Returns a report per `<stage>/<fingerprint>`."""
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(tar_path, "r") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if member.isdir() and len(parts) <= 4:
                continue
            ok = (
                member.isfile()
                and len(parts) in (3, 4)
                and Path(member.name).suffix in _ALLOWED_SUFFIXES
                and ".." not in parts
                and not member.name.startswith("/")
            )
            if not ok:
                raise StoreError(f"{tar_path}: unexpected member {member.name!r}; not a seds cache export")
        tar.extractall(tmp, filter="data")
        reports = {}
        for src in stage_dirs(Path(tmp)):
            dst = StageDir(Path(store_root), src.stage, src.fingerprint)
            reports[f"{src.stage}/{src.fingerprint}"] = copy_verified(
                src, dst, compression=compression, note=f"import:{Path(tar_path).name}"
            )
        if not reports:
            raise StoreError(f"{tar_path}: holds no stage directory (STAGE.json missing)")
        return reports


def view_keys(view_path: Path, stage: str) -> tuple[str, list[str]]:
    """(fingerprint, keys of the ok rows) of one stage in a view file."""
    import pyarrow.parquet as pq

    table = pq.read_table(view_path)
    meta = table.schema.metadata or {}
    fingerprints = json.loads(meta.get(b"seds.fingerprints", b"{}"))
    if stage not in fingerprints:
        raise StoreError(f"{view_path} is not a view of stage {stage!r} (it has {sorted(fingerprints)})")
    rows = table.select([f"{stage}_key", f"{stage}_status"]).to_pylist()
    return fingerprints[stage], [r[f"{stage}_key"] for r in rows if r[f"{stage}_status"] == "ok"]
