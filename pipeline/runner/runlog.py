"""Run records: one small JSON file per run of a stage, so reports can say how long each stage took.

Item stages print a summary line and forget it; a report written later (`seds report run`) needs the
time, the counts and the weights of the runs that produced the items it describes, and the runs that
never ended. So every run of an item stage leaves `<store>/<stage>/<fingerprint>/runs/<started UTC>-<writer
id>.json` beside the items it writes: written when the run starts (`status: running`, `started_utc`, the
writer id: host and pid) and rewritten whole when it ends (`status: done`, or `failed` with the error;
`finished_utc`, counts, seconds). Each run owns its file (array tasks on many hosts never share one), and
each write publishes a complete temporary by rename (store/layout.py atomic_write_bytes): no lock, which
NFS may not give, and no reader ever sees half a record. The files go with their fingerprint at `seds
cache gc`.

A run killed outright (SIGKILL, the OOM killer, a batch system's preemption) leaves its record
`running`. A reader calls such a record killed when its writer was a process of this host that no longer
exists, or when it started more than LONGEST_RUN_S ago (another host's process cannot be asked).
Records written before runs recorded their start have no `status`: they are done, and started
`seconds` before their `finished_utc`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.store.layout import TMP_PREFIX, atomic_write_bytes, new_writer_id, writer_is_dead_here

RUNS_FOLDER = "runs"
RUNNING, DONE, FAILED, KILLED = "running", "done", "failed", "killed"
LONGEST_RUN_S = 7 * 24 * 3600.0  # longer than any batch system's time limit: a record this old and running is dead


def utc_text(seconds: float) -> str:
    """Unix seconds as ISO 8601 UTC to the millisecond (spans of runs a second apart stay apart)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


def utc_seconds(text: str) -> float:
    """Unix seconds of an ISO 8601 UTC time as records hold it (with or without milliseconds)."""
    return datetime.fromisoformat(text).timestamp()


class RunLog:
    """The record of one run in progress: its file, and what it said at the start."""

    def __init__(self, folder: Path, record: dict[str, Any], started: float | None = None):
        """Write `record` as a running run's, started at `started` (Unix seconds; now when None)."""
        self.started = time.time() if started is None else started
        writer = new_writer_id()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(self.started))}-{writer}.json"
        self.opening = {**record, "status": RUNNING, "started_utc": utc_text(self.started), "writer": writer}
        self.open = True
        self._write(self.opening)

    def finish(self, record: dict[str, Any]) -> None:
        """Complete the record: the run ended normally."""
        self._close(record, DONE)

    def fail(self, record: dict[str, Any], error: BaseException) -> None:
        """Complete the record of a run that raised `error` (it ended, but its items may be incomplete)."""
        self._close({**record, "error": f"{type(error).__name__}: {error}"}, FAILED)

    def _close(self, record: dict[str, Any], status: str) -> None:
        self._write({**self.opening, **record, "status": status, "finished_utc": utc_text(time.time())})
        self.open = False

    def _write(self, payload: dict[str, Any]) -> None:
        atomic_write_bytes(self.path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def read_runs(folder: Path) -> list[dict[str, Any]]:
    """Every run record in `folder`, by start time (files that do not parse are named in `unreadable`,
    last)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs, unreadable = [], []
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(TMP_PREFIX)):
        try:
            record = {**json.loads(path.read_text()), "file": path.name}
            runs.append((started_at(record), record))
        except (OSError, ValueError, KeyError, TypeError) as err:
            unreadable.append({"file": path.name, "unreadable": f"{path} is not a run record: {err}"})
    return [record for _, record in sorted(runs, key=lambda pair: pair[0])] + unreadable


def started_at(record: dict[str, Any]) -> float:
    """Unix seconds a run started (an old record: its end less its seconds)."""
    if "started_utc" in record:
        return utc_seconds(record["started_utc"])
    return utc_seconds(record["finished_utc"]) - float(record["seconds"])


def run_state(record: dict[str, Any], now: float | None = None) -> str:
    """DONE, FAILED, RUNNING or KILLED (a running record whose writer is gone, see the module docstring)."""
    status = record.get("status", DONE)
    if status != RUNNING:
        return status
    now = time.time() if now is None else now
    if writer_is_dead_here(record.get("writer", "")) or now - started_at(record) > LONGEST_RUN_S:
        return KILLED
    return RUNNING


def wall_seconds(records: list[dict[str, Any]]) -> float:
    """Seconds covered by the [start, end] spans of the ended runs among `records`: their union, so runs
    that overlap (feature sets sharing a fingerprint, array tasks) count once."""
    spans = sorted((started_at(r), utc_seconds(r["finished_utc"])) for r in records if "finished_utc" in r)
    total, reach = 0.0, float("-inf")
    for start, end in spans:
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
