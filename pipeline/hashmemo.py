"""Content hashes of videos, remembered by (path, size, mtime, inode) so unchanged files are not re-read.

The memo only saves time: keys are always content hashes, and a file whose stat changed is hashed
again. A clip may also be a folder of frames (PHOENIX): its hash covers the names and contents of its
images in order. Only regular files are read: a FIFO blocks until a writer appears and a device may
never end, and hashing runs outside every decode timeout, so anything else is refused from its stat.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.fingerprint import hash_file, hash_json
from pipeline.store.records import ItemFailed
from pipeline.video.decode import frame_folder_images

_FILE_KINDS = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFSOCK: "a socket"}


def memo_path(store_root: Path) -> Path:
    """Where a store keeps its hash memo (one per store, shared by every stage and worker)."""
    return Path(store_root) / ".state" / "hashes.sqlite"


def _require_regular(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "not a file")
        raise ItemFailed("not_a_regular_file", f"{path} is {kind}, not a regular file; a clip is a video file or a "
                                               "folder of frames")


class HashMemo:
    def __init__(self, db_path: Path):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, check_same_thread=False, timeout=60)
        self._db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                         " inode INTEGER, hash TEXT)")
        self._lock = threading.Lock()

    def file_hash(self, path: Path) -> str:
        """blake3 of a regular file (ItemFailed `not_a_regular_file` for anything else, never read)."""
        st = path.stat()
        _require_regular(path, st)
        key = os.fspath(path.resolve())
        with self._lock:
            row = self._db.execute("SELECT size, mtime_ns, inode, hash FROM hashes WHERE path = ?", (key,)).fetchone()
        if row and tuple(row[:3]) == (st.st_size, st.st_mtime_ns, st.st_ino):
            return row[3]
        digest = hash_file(path)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
                             (key, st.st_size, st.st_mtime_ns, st.st_ino, digest))
        return digest

    def content_hash(self, path: Path) -> str:
        if path.is_dir():
            return hash_json([[p.name, self.file_hash(p)] for p in frame_folder_images(path)])
        return self.file_hash(path)

    def close(self) -> None:
        with self._lock:
            self._db.commit()
            self._db.close()


def content_hashes(paths: list[Path], memo_path: Path, threads: int = 4) -> list[str | ItemFailed]:
    """Hash many clips; where one cannot be hashed, why (`missing_file`, `not_a_regular_file`, `unreadable`).
    blake3 releases the GIL, so threads help."""
    memo = HashMemo(memo_path)

    def one(path: Path) -> str | ItemFailed:
        try:
            if not path.exists():
                return ItemFailed("missing_file", f"{path} does not exist")
            return memo.content_hash(path)
        except ItemFailed as failed:
            return failed
        except OSError as err:
            return ItemFailed("unreadable", f"{path} cannot be read: {err}")

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(one, paths))
    finally:
        memo.close()
