"""Run records (pipeline/runner/runlog.py): written when a run starts, completed when it ends, read as
killed when the run never ended and its writer is gone; records of the older, end-only format still read.
One real `seds run pose` is SIGKILLed (its whole process group, as tests/faults/test_kills.py does)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.report.stage_times import stage_time_row
from pipeline.runner.plan import read_view
from pipeline.runner.runlog import (
    DONE,
    FAILED,
    KILLED,
    LONGEST_RUN_S,
    RUNNING,
    RUNS_FOLDER,
    RunLog,
    read_runs,
    run_state,
    started_at,
    utc_seconds,
    wall_seconds,
)
from pipeline.store.layout import TMP_PREFIX, StageDir, new_writer_id
from tests_support import SMALL_POSE as POSE

SEDS = str(Path(sys.executable).parent / "seds")


def _gone_pid() -> int:
    """The pid of a process of this host that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_record_is_written_at_the_start_and_completed_in_place_at_the_end(tmp_path):
    folder = tmp_path / RUNS_FOLDER
    log = RunLog(folder, {"stage": "probe", "computed": 0, "seconds": 0.0}, started=1_700_000_000.25)
    (opening,) = read_runs(folder)
    assert opening["status"] == RUNNING and opening["started_utc"] == "2023-11-14T22:13:20.250Z"
    assert "finished_utc" not in opening and opening["writer"].split("_")[1] == str(os.getpid())
    assert run_state(opening, now=1_700_000_010) == RUNNING  # its writer, this process, is alive
    log.finish({"stage": "probe", "computed": 3, "seconds": 1.5})
    (closed,) = read_runs(folder)
    assert closed["file"] == opening["file"] and [p.name for p in folder.iterdir()] == [opening["file"]]
    assert (closed["status"], closed["computed"], closed["started_utc"]) == (DONE, 3, opening["started_utc"])
    assert run_state(closed) == DONE and utc_seconds(closed["finished_utc"]) > started_at(closed)


def test_records_of_the_end_only_format_read_as_done_runs(tmp_path):
    """Before runs recorded their start: no status, no started_utc; they started `seconds` before their end."""
    folder = tmp_path / RUNS_FOLDER
    folder.mkdir()
    (folder / "20240501T120000Z-vm_1_abcd1234.json").write_text(
        json.dumps(
            {
                "stage": "rgb",
                "computed": 12,
                "reused": 0,
                "failed": 0,
                "seconds": 600.0,
                "weights": "I3D random",
                "finished_utc": "2024-05-01T12:00:00Z",
            }
        )
    )
    (folder / "garbage.json").write_text("{not json")
    old, unreadable = read_runs(folder)
    assert run_state(old) == DONE and started_at(old) == utc_seconds("2024-05-01T11:50:00Z")
    assert wall_seconds([old]) == 600.0
    assert "garbage.json is not a run record" in unreadable["unreadable"]


def test_wall_seconds_is_the_union_of_the_ended_runs_spans():
    def run(start: str, end: str | None) -> dict:
        record = {"started_utc": f"2024-05-01T{start}Z", "status": DONE if end else RUNNING}
        return {**record, "finished_utc": f"2024-05-01T{end}Z"} if end else record

    runs = [
        run("10:00:00", "10:10:00"),
        run("10:05:00", "10:20:00"),  # at once: 20 min, not 25
        run("10:12:00", "10:15:00"),  # inside the others
        run("11:00:00", "11:00:30.500"),
        run("10:30:00", None),
    ]  # apart; never ended: not counted
    assert wall_seconds(runs) == pytest.approx(20 * 60 + 30.5)


def test_a_running_record_is_killed_when_its_writer_is_gone_or_it_is_too_old():
    here = new_writer_id().rsplit("_", 2)[0]
    start = {"status": RUNNING, "started_utc": "2024-05-01T10:00:00.000Z"}
    t0 = utc_seconds(start["started_utc"])
    assert run_state({**start, "writer": f"{here}_{_gone_pid()}_0000"}, now=t0 + 5) == KILLED
    assert run_state({**start, "writer": f"{here}_{os.getpid()}_0000"}, now=t0 + 5) == RUNNING
    other = {**start, "writer": "another_host_4242_0000"}  # cannot be asked: running until implausibly old
    assert run_state(other, now=t0 + LONGEST_RUN_S - 1) == RUNNING
    assert run_state(other, now=t0 + LONGEST_RUN_S + 1) == KILLED
    assert run_state({**start, "status": FAILED}, now=t0 + 5) == FAILED


def test_a_run_that_raises_completes_its_record_as_failed(project, monkeypatch):
    import pipeline.runner.run as run

    def broken(*args, **kwargs):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(run, "_compute", broken)
    _, chain = read_view(project / "manifests", "probe")
    with pytest.raises(RuntimeError, match="decoder exploded"):
        main(["run", "probe", "--no-progress", "--retry-failed", "--set", "probe.full_decode=false"])
    fingerprints = [p.name for p in (project / "cache" / "probe").iterdir() if p.name != chain["probe"]]
    (record,) = read_runs(project / "cache" / "probe" / fingerprints[0] / RUNS_FOLDER)
    assert (record["status"], record["error"]) == (FAILED, "RuntimeError: decoder exploded")
    assert run_state(record) == FAILED and "finished_utc" in record


def test_a_killed_run_is_reported_killed_and_adds_no_seconds(project, capsys):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["pose"] = {**params.get("pose", {}), **POSE}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    runs = project / "cache" / "pose"

    def running() -> list[dict]:
        return [r for folder in runs.glob(f"*/{RUNS_FOLDER}") for r in read_runs(folder) if r.get("status") == RUNNING]

    proc = subprocess.Popen(
        [SEDS, "run", "pose", "--no-progress"],
        cwd=project,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while not running():
        assert proc.poll() is None, "seds run pose ended before its run record said running"
        assert time.monotonic() < deadline, "no running record within 180 s"
        time.sleep(0.02)
    assert proc.poll() is None, "seds run pose ended before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (killed,) = running()  # the file still says running: nobody completed it
    assert killed["writer"].split("_")[-2] == str(proc.pid) and run_state(killed) == KILLED
    fingerprint = killed["fingerprint"]
    row = stage_time_row(project / "cache", "pose", fingerprint)
    assert row[1] == "no run ended" and row[3] == ""
    assert f"killed (started at {killed['started_utc']}, no end; host " in row[2]

    assert main(["run", "pose", "--no-progress"]) == 0
    records = read_runs(StageDir(project / "cache", "pose", fingerprint).path / RUNS_FOLDER)
    assert [run_state(r) for r in records] == [KILLED, DONE]
    rerun = records[1]
    row = stage_time_row(project / "cache", "pose", fingerprint)
    span = utc_seconds(rerun["finished_utc"]) - utc_seconds(rerun["started_utc"])
    assert row[1] == f"{span:.1f}" and row[3] == rerun["finished_utc"]  # the killed run adds nothing
    assert row[2].startswith("1 run(s) ended, seconds = the union of their [start, end] spans")
    assert f"killed (started at {killed['started_utc']}, no end" in row[2]
    assert not [p for p in runs.rglob(f"{TMP_PREFIX}*")]
