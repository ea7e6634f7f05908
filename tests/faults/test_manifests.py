"""Bad manifests are rejected naming file, row and column, before any stage runs; paths that leave
the data root ('..', absolute) are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main

pytestmark = pytest.mark.faults

HEADER = "sample_id,video_path,text,split,start_s,end_s\n"


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            "a,clip.mp4,hello,test,,\nb,../outside.mp4,hi,test,,\n",
            "row 3, column video_path: '../outside.mp4' escapes the data root",
        ),
        ("a,sub/../../../etc/x.mp4,hi,test,,\n", "escapes the data root"),
        ("a,/etc/passwd,hi,test,,\n", "row 2, column video_path: '/etc/passwd' is an absolute path"),
        ("a,C:\\videos\\x.mp4,hi,test,,\n", "is an absolute path"),
        ("a,clip.mp4,hello,test,,\na,clip2.mp4,again,test,,\n", "row 3, column sample_id: duplicate sample_id 'a'"),
        ("a,clip.mp4,hello,test,2.0,1.0\n", "row 2, column end_s: end 1.0 is not after start 2.0"),
        ("a,clip.mp4,hello,test,-1.0,1.0\n", "row 2, column start_s: negative start -1.0"),
        ("a,clip.mp4,hello,test,1.0,\n", "row 2, column start_s/end_s: give both clip bounds or neither"),
        ("a,clip.mp4,hello,test,soon,2.0\n", "row 2, column start_s: 'soon' is not a number"),
        ("a,clip.mp4,,test,,\n", "row 2, column text: empty text"),
        ("a,,hello,test,,\n", "row 2, column video_path: empty video path"),
    ],
)
def test_a_bad_row_is_rejected_with_file_row_and_column(tmp_path, chdir, capsys, rows, message):
    (tmp_path / "annotations.csv").write_text(HEADER + rows)
    (tmp_path / "params.yaml").write_text(
        "data:\n  root: data\n  annotations:\n  - {format: csv, file: annotations.csv, split: test}\n"
    )
    chdir(tmp_path)
    assert main(["manifest"]) == 2
    err = capsys.readouterr().err
    assert "annotations.csv" in err and message in err and "Traceback" not in err
    assert not Path("manifests/manifest.parquet").exists()  # nothing half-written


def test_a_how2sign_range_row_with_a_bad_time_names_the_column(tmp_path, testdata, chdir, capsys):
    lines = (
        (testdata / "annotations/how2sign_NC/how2sign_realigned_val.first25rows.csv")
        .read_bytes()
        .decode()
        .split("\r\n")
    )
    fields = lines[3].split("\t")
    fields[4] = "1O.5"  # START_REALIGNED with a letter O
    lines[3] = "\t".join(fields)
    (tmp_path / "h2s.csv").write_bytes("\r\n".join(lines).encode())
    (tmp_path / "params.yaml").write_text(
        "data:\n  root: data\n  how2sign_clips: ranges\n  annotations:\n"
        "  - {format: how2sign, file: h2s.csv, split: val}\n"
    )
    chdir(tmp_path)
    assert main(["manifest"]) == 2
    assert "h2s.csv, row 4, column START_REALIGNED: '1O.5' is not a number" in capsys.readouterr().err


def test_rows_naming_the_same_clip_share_one_item(tmp_path, make_video, chdir, capsys):
    from tests_support import write_csv_manifest

    (tmp_path / "data").mkdir()
    make_video(tmp_path / "data" / "clip.mp4")
    rows = [
        {"sample_id": sid, "video_path": "clip.mp4", "text": sid, "start_s": "0.0", "end_s": "0.2"}
        for sid in ("first", "same_again")
    ] + [{"sample_id": "whole", "video_path": "clip.mp4", "text": "w"}]
    write_csv_manifest(tmp_path, rows, root="data")
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress"]) == 0
    assert "3 items: 2 computed, 1 reused, 0 failed" in capsys.readouterr().out
    import pyarrow.parquet as pq

    view = {r["sample_id"]: r for r in pq.read_table("manifests/probe.parquet").to_pylist()}
    assert view["first"]["probe_key"] == view["same_again"]["probe_key"] != view["whole"]["probe_key"]
    assert view["first"]["num_frames"] == view["same_again"]["num_frames"] == 5
