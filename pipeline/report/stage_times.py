"""report.md's time of an item stage at one fingerprint: wall-clock, and every run that never ended.

Several runs can make one fingerprint's items, some at the same time: rgb feature sets that share a
fingerprint, array tasks, a rerun after a kill. Adding their seconds counts the hours they overlapped
twice; the wall-clock the stage took is the union of the runs' [start, end] spans (run records,
pipeline/runner/runlog.py). A run killed outright has no end: it is listed as killed, with its start,
and adds nothing to the seconds (its end is not known).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.runner.runlog import (
    DONE,
    FAILED,
    KILLED,
    RUNNING,
    RUNS_FOLDER,
    read_runs,
    run_state,
    utc_seconds,
    wall_seconds,
)
from pipeline.store.layout import StageDir

NOT_RECORDED = "no run record at this fingerprint (items from an older version or a shared store)"


def _writer(record: dict[str, Any]) -> str:
    """'host H, pid P' of a record's writer id (host_pid_random), as far as it says."""
    parts = str(record.get("writer", "")).rsplit("_", 2)
    return f"host {parts[0]}, pid {parts[1]}" if len(parts) == 3 else "writer not recorded"


def _unended(record: dict[str, Any], state: str) -> str:
    if state == KILLED:
        return f"killed (started at {record['started_utc']}, no end; {_writer(record)})"
    return f"running (started at {record['started_utc']}; {_writer(record)})"


def stage_time_row(store: Path, stage: str, fingerprint: str | None, now: float | None = None) -> list[str]:
    """[stage, wall-clock seconds, what, last end (UTC)] of the runs at `fingerprint`; `now` (Unix
    seconds) decides which running records are killed (pipeline/runner/runlog.py run_state)."""
    runs = read_runs(StageDir(store, stage, fingerprint).path / RUNS_FOLDER) if fingerprint else []
    records = [r for r in runs if "unreadable" not in r]
    if not records:
        return [stage, "not recorded", NOT_RECORDED, ""]
    states = [run_state(r, now) for r in records]
    ended = [r for r, state in zip(records, states) if state in (DONE, FAILED)]
    what = []
    if ended:
        what.append(
            f"{len(ended)} run(s) ended, seconds = the union of their [start, end] spans (runs at the "
            "same time count once)"
        )
    done = [r for r, state in zip(records, states) if state == DONE]
    if done:
        last = done[-1]
        what.append(
            f"last: {last['computed']} computed, {last['reused']} reused, {last['failed']} failed in "
            f"{last['seconds']:.1f} s"
        )
    what += [
        f"failed (started at {r['started_utc']}, ended {r['finished_utc']}: {r.get('error', 'no error recorded')})"
        for r, state in zip(records, states)
        if state == FAILED
    ]
    what += [_unended(r, state) for r, state in zip(records, states) if state in (KILLED, RUNNING)]
    what += [r["unreadable"] for r in runs if "unreadable" in r]
    seconds = f"{wall_seconds(ended):.1f}" if ended else "no run ended"
    last_end = max(ended, key=lambda r: utc_seconds(r["finished_utc"]))["finished_utc"] if ended else ""
    return [stage, seconds, "; ".join(what), last_end]
