"""Progress of a long run: a tqdm bar on a terminal, otherwise a plain line at least every 30 seconds.

A bar is off under DVC (stages run with `--no-progress`), in a batch job's log and wherever stderr is
not a terminal. A 25-minute extract then printed nothing until its summary line, so a lab member could
not tell a slow run from a stuck one. Without a bar, a daemon thread writes one line every `every_s`
seconds, whatever the work is doing (an item that takes minutes still gets its lines):

    pose+rgb: 1200/35263 items (3.4%), 2.41 items/s, ETA 3h55m, 2 failed, 7m 18s elapsed
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

LINE_EVERY_S = 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """`update()` as work is done; `close()` at the end. `bar`: a tqdm bar where the stream is a terminal
    (False, or a stream that is not a terminal: the periodic lines). `failed` counts are shown only when
    the work can fail item by item (`counts_failures`)."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "item",
        bar: bool = True,
        initial: int = 0,
        every_s: float = LINE_EVERY_S,
        stream: TextIO | None = None,
        counts_failures: bool = True,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.failed, self.initial = initial, 0, initial
        self.counts_failures = counts_failures
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.postfix = ""
        self._tqdm = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        if bar and self.stream.isatty():
            from tqdm import tqdm

            self._tqdm = tqdm(
                total=total, initial=initial, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, smoothing=0.1
            )
        elif total > initial:
            threading.Thread(target=self._lines, args=(every_s,), daemon=True, name=f"progress-{desc}").start()

    def update(self, n: int = 1, failed: int = 0, **postfix: Any) -> None:
        with self._lock:
            self.done += n
            self.failed += failed
            if postfix:
                self.postfix = ", ".join(f"{k} {v}" for k, v in postfix.items())
        if self._tqdm is not None:
            self._tqdm.update(n)
            if postfix:
                self._tqdm.set_postfix(**postfix)

    def line(self) -> str:
        """The progress line as it stands (what the periodic printer writes)."""
        with self._lock:
            done, failed, postfix = self.done, self.failed, self.postfix
        elapsed = time.monotonic() - self.started
        rate = (done - self.initial) / elapsed if elapsed > 0 else 0.0
        left = self.total - done
        eta = _duration(left / rate) if rate > 0 else "unknown"
        percent = 100.0 * done / self.total if self.total else 100.0
        parts = [
            f"{self.desc}: {done}/{self.total} {self.unit}s ({percent:.1f}%)",
            f"{rate:.2f} {self.unit}s/s",
            f"ETA {eta}",
        ]
        if self.counts_failures:
            parts.append(f"{failed} failed")
        if postfix:
            parts.append(postfix)
        parts.append(f"{_duration(elapsed)} elapsed")
        return ", ".join(parts)

    def _lines(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        self._stop.set()
        if self._tqdm is not None:
            self._tqdm.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
