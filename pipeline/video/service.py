"""Decoding in a child process, with a timeout, so a hostile file cannot hang or crash a stage.

Why: decord can deadlock while holding the GIL on a file whose container over-reports its frame count,
and a segfaulting decoder would take the worker (and its open shard) with it. The parent sends one
JSON line per request on the child's stdin and reads one JSON line per answer from its stdout;
frames travel through POSIX shared memory (nothing is pickled either way). Requests are pipelined:
`submit` the next clip before taking the current one's frames, and decode overlaps computation.
A request that takes longer than `timeout_s` kills the child, fails with reason `decode_timeout`, and
the next request starts a fresh child. A child whose parent dies (a SIGKILLed stage) is killed by the
kernel at once (Linux) and never prints a traceback for answers it can no longer deliver.

Run as `python -m pipeline.video.service` only by `DecodeService`.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.store.records import ItemFailed

STARTUP_S = 60.0  # a fresh child imports numpy, decord and PyAV before it says it is ready
PARENT_ENV = "SEDS_DECODER_PARENT"  # the parent's pid, so a child started after its parent died exits
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass
class _Pending:
    ticket: int
    request: dict[str, Any]
    sent: bool = False


@dataclass
class DecodeService:
    """A child decoder process. Use as a context manager; safe to use from dask workers (daemonic
    processes may not fork multiprocessing children, but may start subprocesses). One thread starts and
    uses it: the child is killed when the thread that started it ends (see `_die_with_parent`)."""

    timeout_s: float = 120.0
    _proc: subprocess.Popen | None = None
    _pending: deque = field(default_factory=deque)
    _done: dict[int, dict] = field(default_factory=dict)
    _tickets: Any = field(default_factory=itertools.count)
    _buffer: bytes = b""
    _ready: bool = False  # the child has said it is ready: from then on a request has timeout_s

    # -- public ------------------------------------------------------------------------------
    def submit_frames(self, path: Path, indices: np.ndarray, short_side: int | None = None) -> int:
        return self._submit(
            {
                "op": "frames",
                "path": os.fspath(path),
                "indices": np.asarray(indices, dtype=np.int64).tolist(),
                "short_side": short_side,
            }
        )

    def submit_frame_sets(self, path: Path, sets: list[tuple[np.ndarray, int | None]]) -> int:
        """One decode of `path` for several consumers: each (indices, short_side) set comes back as its
        own array (`frame_sets`), the union of their frames decoded once (decode.read_frame_sets)."""
        return self._submit(
            {
                "op": "frame_sets",
                "path": os.fspath(path),
                "sets": [[np.asarray(i, dtype=np.int64).tolist(), side] for i, side in sets],
            }
        )

    def submit_probe(self, path: Path, full_decode: bool = True) -> int:
        return self._submit({"op": "probe", "path": os.fspath(path), "full_decode": full_decode})

    def frames(self, ticket: int) -> np.ndarray:
        answer = self._result(ticket)
        return _take_shared(answer["shm"], answer["shape"], answer["dtype"])

    def frame_sets(self, ticket: int) -> list[np.ndarray]:
        answer = self._result(ticket)
        return [_take_shared(part["shm"], part["shape"], part["dtype"]) for part in answer["sets"]]

    def probe(self, ticket: int) -> tuple[dict[str, Any], str | None]:
        """(VideoInfo as a dict, decode error or None: the frames counted are those that decoded)."""
        answer = self._result(ticket)
        return answer["info"], answer.get("decode_error")

    def read_frames(self, path: Path, indices: np.ndarray, short_side: int | None = None) -> np.ndarray:
        return self.frames(self.submit_frames(path, indices, short_side))

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        for answer in self._done.values():
            _discard_shared(answer)
        self._done.clear()

    def __enter__(self) -> "DecodeService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _submit(self, request: dict[str, Any]) -> int:
        ticket = next(self._tickets)
        request["id"] = ticket
        pending = _Pending(ticket, request)
        self._pending.append(pending)
        self._send(pending)
        return ticket

    def _start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **{PARENT_ENV: str(os.getpid())})
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.video.service"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=os.getcwd(),
        )
        self._buffer = b""
        self._ready = False
        for pending in self._pending:
            pending.sent = False
        for pending in list(self._pending):
            self._send(pending)

    def _send(self, pending: _Pending) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
            return  # _start re-sends everything pending, this one included
        if pending.sent:
            return
        try:
            self._proc.stdin.write((json.dumps(pending.request) + "\n").encode())
            self._proc.stdin.flush()
            pending.sent = True
        except BrokenPipeError:
            self._proc = None
            self._start()

    def _read_line(self, deadline: float) -> bytes | None:
        assert self._proc is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _result(self, ticket: int) -> dict[str, Any]:
        while ticket not in self._done:
            if not self._pending:
                raise KeyError(f"unknown decode ticket {ticket}")
            head = self._pending[0]
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            # Start-up is not decode time: a cold child on a loaded machine must not fail a short timeout.
            limit = self.timeout_s if self._ready else max(self.timeout_s, STARTUP_S)
            try:
                line = self._read_line(time.monotonic() + limit)
            except EOFError:
                code = self._proc.wait()
                self._proc = None
                self._pending.popleft()
                self._done[head.ticket] = {
                    "ok": False,
                    "reason": "error",
                    "error": f"decoder process died (exit {code}) on {head.request['path']}",
                }
                continue
            if line is None:
                self._proc.kill()
                self._proc.wait()
                self._proc = None
                self._pending.popleft()
                self._done[head.ticket] = {
                    "ok": False,
                    "reason": "decode_timeout",
                    "error": f"no answer in {limit:.0f} s decoding {head.request['path']}",
                }
                continue
            answer = json.loads(line)
            if answer.get("ready"):
                self._ready = True
                continue
            self._pending.popleft()
            self._done[answer["id"]] = answer
        answer = self._done.pop(ticket)
        if not answer["ok"]:
            raise ItemFailed(answer["reason"], answer["error"])
        return answer


def _take_shared(name: str, shape: list[int], dtype: str) -> np.ndarray:
    from multiprocessing import shared_memory

    block = shared_memory.SharedMemory(name=name)
    try:
        return np.ndarray(shape, dtype=np.dtype(dtype), buffer=block.buf).copy()
    finally:
        block.close()
        block.unlink()


def _discard_shared(answer: dict) -> None:
    from multiprocessing import shared_memory

    for name in [answer.get("shm"), *(part["shm"] for part in answer.get("sets", ()))]:
        if not name:
            continue
        try:
            block = shared_memory.SharedMemory(name=name)
            block.close()
            block.unlink()
        except FileNotFoundError:
            pass


# -- the child -----------------------------------------------------------------------------------
def _put_shared(array: np.ndarray) -> str:
    from multiprocessing import resource_tracker, shared_memory

    block = shared_memory.SharedMemory(create=True, size=max(1, array.nbytes))
    resource_tracker.unregister(block._name, "shared_memory")  # the parent owns and unlinks it
    np.ndarray(array.shape, dtype=array.dtype, buffer=block.buf)[...] = array
    name = block.name
    block.close()
    return name


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    from pipeline.video import decode

    path = Path(request["path"])
    if request["op"] == "probe":
        if request.get("full_decode", True):
            info, error = decode.count_decodable(path)
        else:
            info, error = decode.open_source(path).info, None
        return {"info": info.as_dict(), "decode_error": error}
    if request["op"] == "frame_sets":
        sets = decode.read_frame_sets(path, [(np.asarray(i, dtype=np.int64), side) for i, side in request["sets"]])
        return {"sets": [_shared_answer(frames) for frames in sets]}
    return _shared_answer(
        decode.read_frames(path, np.asarray(request["indices"], dtype=np.int64), request.get("short_side"))
    )


def _shared_answer(frames: np.ndarray) -> dict[str, Any]:
    return {"shm": _put_shared(frames), "shape": list(frames.shape), "dtype": frames.dtype.str}


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this child when its parent dies (Linux: PR_SET_PDEATHSIG), so a killed stage
    leaves no decoder behind, not even one stuck in C in a decode that never ends; and exit now if the
    parent died before that was set. Elsewhere the child ends at its next read (EOF) or answer (EPIPE).
    The signal follows the parent *thread* that started the child: a DecodeService is used by one thread."""
    parent = int(os.environ.get(PARENT_ENV, "0"))
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:
        os._exit(0)


def _send_answer(out, answer: dict[str, Any]) -> None:
    """Write one answer line; when nobody reads them any more (the parent died), leave quietly at once."""
    try:
        out.write((json.dumps(answer) + "\n").encode())
        out.flush()
    except BrokenPipeError:
        os._exit(0)  # not sys.exit: the interpreter's final flush of `out` would raise (and print) again


def _serve() -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group: the stage decides
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answer stream
    import av  # noqa: F401  (imported before "ready", so start-up never counts against a request's timeout)

    from pipeline.video import decode

    decode.import_decord()  # after cv2, or PNG frames stop decoding (see import_decord)

    _send_answer(out, {"ready": True})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            answer = {"ok": True, **_handle(request)}
        except ItemFailed as err:
            answer = {"ok": False, "reason": err.reason, "error": err.message}
        except Exception as err:  # reported to the parent as a recorded failure, never swallowed
            answer = {"ok": False, "reason": "error", "error": f"{type(err).__name__}: {err}"}
        answer["id"] = request["id"]
        _send_answer(out, answer)


if __name__ == "__main__":
    _serve()
