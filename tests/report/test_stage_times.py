"""report.md's time of an item stage: the wall-clock union of its runs' spans, not their sum (issue 22:
"all 2 runs at this fingerprint: 2869.7 s" added up two feature sets that ran at the same time)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.report.stage_times import NOT_RECORDED, stage_time_row
from pipeline.runner.runlog import RUNS_FOLDER, utc_seconds
from pipeline.store.layout import StageDir

FINGERPRINT = "f" * 32


def _write(store: Path, name: str, record: dict) -> None:
    folder = StageDir(store, "rgb", FINGERPRINT).path / RUNS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(record))


def _run(start: str, end: str, computed: int, seconds: float) -> dict:
    return {
        "stage": "rgb",
        "status": "done",
        "started_utc": start,
        "finished_utc": end,
        "computed": computed,
        "reused": 0,
        "failed": 0,
        "seconds": seconds,
        "writer": "node7_311_ab12cd34",
    }


def test_two_runs_at_the_same_time_count_once(tmp_path):
    store = tmp_path / "cache"
    assert stage_time_row(store, "rgb", FINGERPRINT) == ["rgb", "not recorded", NOT_RECORDED, ""]
    # Two feature sets of one fingerprint, 1434.8 s and 1434.9 s, started 0.2 s apart: 1435.1 s of wall-clock.
    _write(store, "a", _run("2024-05-01T10:00:00.000Z", "2024-05-01T10:23:54.800Z", 6, 1434.8))
    _write(store, "b", _run("2024-05-01T10:00:00.200Z", "2024-05-01T10:23:55.100Z", 6, 1434.9))
    row = stage_time_row(store, "rgb", FINGERPRINT)
    assert row[1] == "1435.1" and row[3] == "2024-05-01T10:23:55.100Z"
    assert row[2] == (
        "2 run(s) ended, seconds = the union of their [start, end] spans (runs at the same time count "
        "once); last: 6 computed, 0 reused, 0 failed in 1434.9 s"
    )
    # A record of the end-only format (an earlier run, an hour before) and a failed run add their own spans.
    _write(
        store,
        "old",
        {
            "stage": "rgb",
            "computed": 12,
            "reused": 0,
            "failed": 0,
            "seconds": 60.0,
            "finished_utc": "2024-05-01T09:01:00Z",
        },
    )
    failed = {
        **_run("2024-05-01T11:00:00.000Z", "2024-05-01T11:00:10.000Z", 0, 10.0),
        "status": "failed",
        "error": "CoverageError: 2 rows not covered",
    }
    _write(store, "failed", failed)
    row = stage_time_row(store, "rgb", FINGERPRINT)
    assert row[1] == "1505.1" and row[3] == "2024-05-01T11:00:10.000Z"
    assert (
        row[2].startswith("4 run(s) ended")
        and (
            "failed (started at 2024-05-01T11:00:00.000Z, ended "
            "2024-05-01T11:00:10.000Z: CoverageError: 2 rows not covered)"
        )
        in row[2]
    )
    assert utc_seconds(row[3]) - utc_seconds("2024-05-01T09:00:00Z") > float(row[1])  # idle hours are not counted
