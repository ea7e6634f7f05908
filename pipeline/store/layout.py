"""Where a stage fingerprint's files live, and how a file is published (atomic rename, no lock).

    <root>/<stage>/<fingerprint>/STAGE.json                   fingerprint inputs, clear text
    <root>/<stage>/<fingerprint>/shards/<writer>-<seq>.h5     arrays
    <root>/<stage>/<fingerprint>/index/<writer>-<seq>.parquet one row per item
    <root>/<stage>/<fingerprint>/failures/<writer>-<seq>.parquet
Temporaries start with `.tmp-`; readers never look at them.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.errors import UserError
from pipeline.fingerprint import StageFingerprint

TMP_PREFIX = ".tmp-"


class StoreError(UserError, RuntimeError):
    """The store is not in the state a caller needs (missing, read-only, inconsistent)."""


class StoreWriteError(StoreError):
    """A write into the store failed (disk full, quota, read-only); what was open was dropped."""

    @classmethod
    def of(cls, err: OSError, path: Path, lost_items: int = 0) -> "StoreWriteError":
        cause = {
            errno.ENOSPC: "disk full",
            errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large",
            errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied",
        }.get(err.errno, "write failed")
        lost = f"; the {lost_items} item(s) of the open shard were not stored" if lost_items else ""
        return cls(
            f"{cause} ({err.strerror or err}) writing {path}: nothing partial was kept{lost} (the store "
            "holds only complete shards); free space and rerun: only missing items are computed"
        )


def new_writer_id() -> str:
    """Unique per writer, ever: host, pid and randomness (two array tasks on one host never collide)."""
    host = socket.gethostname().split(".")[0].replace("-", "_")[:24] or "host"
    return f"{host}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


STALE_TEMPORARY_S = 6 * 3600.0  # another host's temporary this old is a dead writer's, not a slow one's


def writer_is_dead_here(writer: str) -> bool:
    """True for a writer id (`new_writer_id`) of a process of this host that no longer exists; False for
    another host's (it cannot be asked) and for one that does not parse."""
    try:
        host, pid, _ = writer.rsplit("_", 2)
        if host != new_writer_id().rsplit("_", 2)[0]:
            return False
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


def _writer_is_dead_here(name: str) -> bool:
    """True for a temporary whose writer ran on this host under a pid that no longer exists."""
    return writer_is_dead_here(name[len(TMP_PREFIX) :].split("-", 1)[0])


def remove_dead_temporaries(folders: list[Path], older_than_s: float = STALE_TEMPORARY_S) -> list[Path]:
    """Remove temporaries left by killed writers: at once when the writer was a process of this host
    that is gone, otherwise (another host's, maybe alive) only when older than `older_than_s`."""
    now = time.time()
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not (path.name.startswith(TMP_PREFIX) and path.is_file()):
                continue
            try:
                stale = _writer_is_dead_here(path.name) or now - path.stat().st_mtime >= older_than_s
            except FileNotFoundError:  # its writer published or removed it meanwhile
                continue
            if stale:
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def fsync_directory(path: Path) -> None:
    """fsync a folder: a rename inside it is durable only once the folder itself is synced (POSIX)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(tmp: Path, final: Path) -> None:
    """Give a complete temporary its final name durably: fsync it, rename it, fsync its folder. A crash
    or power cut at any point leaves the old file or the new one, whole (shards, index parts, views'
    records, checkpoints all go through here)."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_directory(Path(final).parent)


def write_then_publish(final: Path, write: Callable[[Path], object]) -> None:
    """Have `write` fill a temporary beside `final`, then publish it (publish_file): readers see all of
    the file or none of it. The temporary goes on every way out but success, a stop by SIGINT or SIGTERM
    (a KeyboardInterrupt) included, so a stopped run leaves none behind; an OSError comes back as a
    StoreWriteError naming `final`. The temporary's name starts with `final`'s, so one whose name starts
    with a writer id is known as that writer's (remove_dead_temporaries)."""
    final = Path(final)
    tmp = final.with_name(f"{TMP_PREFIX}{final.name}.{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        publish_file(tmp, final)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise StoreWriteError.of(err, final) from err
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path`: readers see all of it or nothing."""
    write_then_publish(path, lambda tmp: tmp.write_bytes(data))


@dataclass(frozen=True)
class StageDir:
    root: Path
    stage: str
    fingerprint: str

    @property
    def path(self) -> Path:
        return Path(self.root) / self.stage / self.fingerprint

    @property
    def shards(self) -> Path:
        return self.path / "shards"

    @property
    def index(self) -> Path:
        return self.path / "index"

    @property
    def failures(self) -> Path:
        return self.path / "failures"

    @property
    def stage_json(self) -> Path:
        return self.path / "STAGE.json"

    def exists(self) -> bool:
        return self.stage_json.is_file()

    def create(self, fingerprint: StageFingerprint) -> None:
        """Make the directories and STAGE.json (once; it never changes for a fingerprint)."""
        if fingerprint.digest != self.fingerprint:
            raise StoreError(f"fingerprint {fingerprint.digest} does not match directory {self.path}")
        for d in (self.shards, self.index, self.failures):
            d.mkdir(parents=True, exist_ok=True)
        if not self.stage_json.exists():
            record = {"fingerprint": self.fingerprint, **fingerprint.as_record()}
            atomic_write_bytes(self.stage_json, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())

    def read_record(self) -> dict:
        return json.loads(self.stage_json.read_text())


def stage_dirs(root: Path, stage: str | None = None) -> list[StageDir]:
    """Every fingerprint directory under the store root (optionally of one stage)."""
    root = Path(root)
    found = []
    if stage:
        stages = [root / stage]
    else:
        stages = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    for stage_path in stages:
        if not stage_path.is_dir():
            continue
        for fp_path in sorted(stage_path.iterdir()):
            if (fp_path / "STAGE.json").is_file():
                found.append(StageDir(root, stage_path.name, fp_path.name))
    return found


def published_files(directory: Path, suffix: str) -> list[Path]:
    """Finished files of a kind, in a stable order, temporaries excluded."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == suffix and not p.name.startswith(TMP_PREFIX))
