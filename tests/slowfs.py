"""A slow network filesystem without locks, for tests: a FUSE passthrough of a folder (mfusepy + libfuse3).

What it rehearses is a busy NFS mount without lockd, where array tasks keep their store and clips:
- every open and every read waits (`--open-ms`, `--read-ms`), as a round trip to a loaded server does;
- every POSIX lock (fcntl/lockf) and every flock is refused with ENOLCK, as such a mount refuses them;
- each open and each lock request is logged as one JSON line with the path and the `SLOWFS_TAG` of the
  process that asked (read from its environment), so a test can tell which array task read which file
  and whether anything tried to lock.
The server runs in the foreground of its own process; `python tests/slowfs.py SOURCE MOUNT --log FILE`.
A test starts it, waits for the mount, and unmounts it with `fusermount3 -u` (see `mounted_slowfs`).
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TAG = "SLOWFS_TAG"  # the environment variable naming the process that opened a file (a task, a test step)


def fuse_missing() -> str | None:
    """Why a FUSE filesystem cannot be mounted here, or None when it can."""
    if not Path("/dev/fuse").exists():
        return "/dev/fuse does not exist"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian: apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as err:  # OSError: libfuse3.so.3 missing
        return f"mfusepy does not load: {err}"
    return None


def _tag_of(pid: int) -> str:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return ""
    for entry in environ:
        if entry.startswith(TAG.encode() + b"="):
            return entry.split(b"=", 1)[1].decode()
    return ""


def _operations(source: Path, open_s: float, read_s: float, log_path: Path):
    import mfusepy as fuse

    class SlowPassthrough(fuse.Operations):
        use_ns = True

        def __init__(self) -> None:
            self.log = open(log_path, "a", buffering=1)
            self.log_lock = threading.Lock()

        def _real(self, path: str) -> str:
            return os.path.join(source, path.lstrip("/"))

        def _note(self, event: str, path: str) -> None:
            _uid, _gid, pid = fuse.fuse_get_context()
            line = json.dumps({"event": event, "path": path, "pid": pid, "tag": _tag_of(pid), "t": time.time()})
            with self.log_lock:
                self.log.write(line + "\n")

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            st = os.fstat(fh) if fh is not None else os.lstat(self._real(path))
            return {
                "st_mode": st.st_mode,
                "st_ino": st.st_ino,
                "st_nlink": st.st_nlink,
                "st_uid": st.st_uid,
                "st_gid": st.st_gid,
                "st_size": st.st_size,
                "st_atime": st.st_atime_ns,
                "st_mtime": st.st_mtime_ns,
                "st_ctime": st.st_ctime_ns,
                "st_blocks": st.st_blocks,
            }

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", *os.listdir(self._real(path))]

        def access(self, path: str, amode: int) -> int:
            if not os.access(self._real(path), amode):
                raise fuse.FuseOSError(errno.EACCES)
            return 0

        def open(self, path: str, flags: int) -> int:
            time.sleep(open_s)
            self._note("open", path)
            return os.open(self._real(path), flags)

        def create(self, path: str, mode: int, flags: int = os.O_WRONLY | os.O_CREAT) -> int:
            time.sleep(open_s)
            self._note("create", path)
            return os.open(self._real(path), flags | os.O_CREAT, mode)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            time.sleep(read_s)
            return os.pread(fh, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            return os.pwrite(fh, data, offset)

        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            if fh is not None:
                os.ftruncate(fh, length)
            else:
                os.truncate(self._real(path), length)
            return 0

        def flush(self, path: str, fh: int) -> int:
            return 0

        def fsync(self, path: str, datasync: int, fh: int) -> int:
            os.fsync(fh)
            return 0

        def release(self, path: str, fh: int) -> int:
            os.close(fh)
            return 0

        def unlink(self, path: str) -> int:
            os.unlink(self._real(path))
            return 0

        def rename(self, old: str, new: str) -> int:
            os.rename(self._real(old), self._real(new))
            return 0

        def mkdir(self, path: str, mode: int) -> int:
            os.mkdir(self._real(path), mode)
            return 0

        def rmdir(self, path: str) -> int:
            os.rmdir(self._real(path))
            return 0

        def symlink(self, target: str, source_path: str) -> int:
            os.symlink(source_path, self._real(target))
            return 0

        def readlink(self, path: str) -> str:
            return os.readlink(self._real(path))

        def link(self, target: str, source_path: str) -> int:
            os.link(self._real(source_path), self._real(target))
            return 0

        def chmod(self, path: str, mode: int) -> int:
            os.chmod(self._real(path), mode)
            return 0

        def chown(self, path: str, uid: int, gid: int) -> int:
            os.chown(self._real(path), uid, gid)
            return 0

        def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
            os.utime(self._real(path), ns=times) if times else os.utime(self._real(path))
            return 0

        def statfs(self, path: str) -> dict[str, int]:
            st = os.statvfs(self._real(path))
            return {
                key: getattr(st, key)
                for key in (
                    "f_bavail",
                    "f_bfree",
                    "f_blocks",
                    "f_bsize",
                    "f_favail",
                    "f_ffree",
                    "f_files",
                    "f_flag",
                    "f_frsize",
                    "f_namemax",
                )
            }

        def lock(self, path: str, fh: int, cmd: int, lock) -> int:
            if lock and lock.contents.l_type == fcntl.F_UNLCK:  # libfuse releases a closing file's locks: none
                return 0
            self._note("lock", path)
            raise fuse.FuseOSError(errno.ENOLCK)

        def flock(self, path: str, fh: int, op: int) -> int:
            if op & fcntl.LOCK_UN:
                return 0
            self._note("flock", path)
            raise fuse.FuseOSError(errno.ENOLCK)

    return SlowPassthrough()


def serve(source: Path, mount: Path, open_ms: float, read_ms: float, log_path: Path) -> None:
    import mfusepy as fuse

    fuse.FUSE(
        _operations(source, open_ms / 1000, read_ms / 1000, log_path),
        str(mount),
        foreground=True,
        nothreads=False,
        fsname="slowfs",
    )


@contextmanager
def mounted_slowfs(
    source: Path, mount: Path, log_path: Path, open_ms: float = 30.0, read_ms: float = 3.0
) -> Iterator[Path]:
    """Mount `source` at `mount` through the slow, lockless passthrough for the block; unmount after."""
    mount.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            str(source),
            str(mount),
            "--log",
            str(log_path),
            "--open-ms",
            str(open_ms),
            "--read-ms",
            str(read_ms),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mount):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"slowfs did not mount {mount}: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.05)
        yield mount
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mount)], check=False, capture_output=True)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def read_log(log_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("mount", type=Path)
    parser.add_argument("--log", type=Path, required=True, help="JSON lines: opens and lock requests, by tag")
    parser.add_argument("--open-ms", type=float, default=30.0, help="latency added to every open")
    parser.add_argument("--read-ms", type=float, default=3.0, help="latency added to every read request")
    args = parser.parse_args()
    serve(args.source, args.mount, args.open_ms, args.read_ms, args.log)


if __name__ == "__main__":
    main()
