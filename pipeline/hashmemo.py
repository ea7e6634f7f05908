"""Content hashes of clips, remembered by (path, size, mtime, inode) so unchanged files are not re-read.

The memo only saves time: keys are always content hashes, and a file whose stat changed is hashed
again. A clip may also be a folder of frames (PHOENIX): its hash covers the names and contents of its
images in order. Only regular files are read: a FIFO blocks until a writer appears and a device may
never end, and hashing runs outside every decode timeout, so anything else is refused from its stat.

Why no database: the store (and so the memo) sits on NFS, Lustre or GPFS where array tasks run, often
without working POSIX locks; a shared SQLite file there either fails (`database is locked`, ENOLCK) or
makes tasks wait on each other. So the memo is a folder of Parquet parts, `<store>/.state/hashes/`,
each written by one process and published by atomic rename, like the store's index parts. A process
reads every part once (then only parts that are new), keeps what it hashes in memory, and publishes it
as a part of its own every `publish_every` new hashes or `publish_s` seconds and when its run ends, so
a killed task loses at most that much hashing. When parts pile up, the process that publishes folds the parts it read
into its own and removes them (their rows live on in the new part; a part published meanwhile is not touched).
"""

from __future__ import annotations

import atexit
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.fingerprint import hash_file, hash_json
from pipeline.store.layout import (
    StoreWriteError,
    new_writer_id,
    published_files,
    remove_dead_temporaries,
    write_then_publish,
)
from pipeline.store.records import ItemFailed
from pipeline.video.decode import frame_folder_images

_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
MEMO_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("inode", pa.int64()),
        ("hash", pa.string()),
    ]
)
FOLD_PARTS = 64  # a publisher that has read more parts than this folds them into its own


def memo_dir(store_root: Path) -> Path:
    """Where a store keeps its hash memo (one per store, shared by every stage, task and worker)."""
    return Path(store_root) / ".state" / "hashes"


def _require_regular(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "not a file")
        raise ItemFailed(
            "not_a_regular_file", f"{path} is {kind}, not a regular file; a clip is a video file or a folder of frames"
        )


Stat = tuple[int, int, int]  # size, mtime_ns, inode


class HashMemo:
    """One process's view of a store's hash memo: every published part, plus what it hashed itself."""

    def __init__(self, folder: Path, publish_every: int = 1000, publish_s: float = 60.0):
        self.folder = Path(folder)
        self.publish_every = publish_every
        self.publish_s = publish_s
        self._published_at = time.monotonic()
        self._known: dict[str, tuple[Stat, str]] = {}
        self._new: dict[str, tuple[Stat, str]] = {}
        self._read_parts: set[str] = set()
        self._writer, self._pid, self._seq = new_writer_id(), os.getpid(), 0
        self._lock = threading.Lock()
        remove_dead_temporaries([self.folder])  # a task killed while publishing left its part unfinished
        self.refresh()

    def refresh(self) -> None:
        """Take in the parts other processes published since the last look (a part folded away
        between listing and reading is skipped: its rows are in the part that folded it)."""
        for part in published_files(self.folder, ".parquet"):
            if part.name in self._read_parts:
                continue
            try:
                table = pq.read_table(part, schema=MEMO_SCHEMA)
            except FileNotFoundError:
                continue
            except (pa.ArrowException, OSError):  # a damaged part costs re-hashing only: never trust it
                self._read_parts.add(part.name)
                continue
            columns = table.to_pydict()
            with self._lock:
                for path, size, mtime, inode, digest in zip(
                    columns["path"], columns["size"], columns["mtime_ns"], columns["inode"], columns["hash"]
                ):
                    self._known[path] = ((size, mtime, inode), digest)
                self._read_parts.add(part.name)

    def file_hash(self, path: Path) -> str:
        """blake3 of a regular file (ItemFailed `not_a_regular_file` for anything else, never read)."""
        st = path.stat()
        _require_regular(path, st)
        key = os.fspath(path.resolve())
        now: Stat = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            known = self._new.get(key) or self._known.get(key)
        if known is not None and known[0] == now:
            return known[1]
        digest = hash_file(path)
        with self._lock:
            self._new[key] = (now, digest)
            due = len(self._new) >= self.publish_every or time.monotonic() - self._published_at >= self.publish_s
        if due:
            self.publish()
        return digest

    def content_hash(self, path: Path) -> str:
        if path.is_dir():
            return hash_json([[p.name, self.file_hash(p)] for p in frame_folder_images(path)])
        return self.file_hash(path)

    def publish(self) -> None:
        """Publish what this process hashed since its last publication as a part of its own (nothing
        when it hashed nothing). Folds the parts it has read into that part once there are many."""
        with self._lock:
            fresh, self._new = self._new, {}
            self._published_at = time.monotonic()
            fold = len(self._read_parts) > FOLD_PARTS
            rows = {**self._known, **fresh} if fold else fresh
            folded = set(self._read_parts) if fold else set()
            self._known.update(fresh)
        if not rows:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.getpid() != self._pid:  # a forked child: part names are per process, ever
            self._writer, self._pid, self._seq = new_writer_id(), os.getpid(), 0
        name = f"{self._writer}-{self._seq:05d}.parquet"
        self._seq += 1
        paths = list(rows)
        table = pa.table(
            {
                "path": paths,
                "size": [rows[p][0][0] for p in paths],
                "mtime_ns": [rows[p][0][1] for p in paths],
                "inode": [rows[p][0][2] for p in paths],
                "hash": [rows[p][1] for p in paths],
            },
            schema=MEMO_SCHEMA,
        )
        try:
            write_then_publish(self.folder / name, lambda tmp: pq.write_table(table, tmp))
        except StoreWriteError:  # the memo only saves time: a store we cannot write to costs re-hashing
            return
        with self._lock:
            self._read_parts.add(name)
        for old in folded:
            (self.folder / old).unlink(missing_ok=True)
        with self._lock:
            self._read_parts -= folded


_MEMOS: dict[Path, HashMemo] = {}
_MEMOS_LOCK = threading.Lock()


def memo_for(store_root: Path) -> HashMemo:
    """This process's memo of `store_root` (one per store, read once, refreshed by `content_hashes`)."""
    folder = memo_dir(store_root).resolve()
    with _MEMOS_LOCK:
        memo = _MEMOS.get(folder)
        if memo is None:
            memo = _MEMOS[folder] = HashMemo(folder)
    return memo


@atexit.register
def publish_memos() -> None:
    """Publish every memo of this process (end of a run, a worker's flush, and process exit)."""
    with _MEMOS_LOCK:
        memos = list(_MEMOS.values())
    for memo in memos:
        memo.publish()


def content_hashes(paths: list[Path], store_root: Path, threads: int = 4) -> list[str | ItemFailed]:
    """Hash many clips; where one cannot be hashed, why (`missing_file`, `not_a_regular_file`, `unreadable`).
    blake3 releases the GIL, so threads help. New hashes are published as the memo's thresholds say and
    by `publish_memos` at the end of a run."""
    memo = memo_for(store_root)
    memo.refresh()

    def one(path: Path) -> str | ItemFailed:
        try:
            if not path.exists():
                return ItemFailed("missing_file", f"{path} does not exist")
            return memo.content_hash(path)
        except ItemFailed as failed:
            return failed
        except OSError as err:
            return ItemFailed("unreadable", f"{path} cannot be read: {err}")

    if len(paths) <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, paths))
