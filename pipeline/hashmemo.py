"""Content hashes of videos, remembered by (path, size, mtime, inode) so unchanged files are not re-read.

The memo only saves time: keys are always content hashes, and a file whose stat changed is hashed
again. A clip may also be a folder of frames (PHOENIX): its hash covers the names and contents of its
images in order.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.fingerprint import hash_file, hash_json
from pipeline.video.decode import frame_folder_images


class HashMemo:
    def __init__(self, db_path: Path):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, check_same_thread=False, timeout=60)
        self._db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                         " inode INTEGER, hash TEXT)")
        self._lock = threading.Lock()

    def file_hash(self, path: Path) -> str:
        st = path.stat()
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


def content_hashes(paths: list[Path], memo_path: Path, threads: int = 4) -> list[str | None]:
    """Hash many clips (None where the path does not exist); blake3 releases the GIL, so threads help."""
    memo = HashMemo(memo_path)

    def one(path: Path) -> str | None:
        try:
            return memo.content_hash(path) if path.exists() else None
        except OSError:
            return None  # unreadable now: the probe stage records why

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(one, paths))
    finally:
        memo.close()
