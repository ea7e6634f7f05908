"""Clips that are not what their key says: replaced after probe by another valid video, replaced while
being computed, or not regular files at all (a FIFO, a device). Real stages on videos encoded here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.store import StageDir, StageIndex
from tests_support import view_rows, write_csv_manifest

pytestmark = pytest.mark.faults

SEDS = str(Path(sys.executable).parent / "seds")
RGB = {"size": 32, "resize": 32, "window": 4, "num_windows": 2, "batch_size": 8}
FAST = {"runtime": {"chunk_items": 64}, "rgb": RGB}


def _stored(stage: str, key: str) -> bool:
    fingerprint = next(Path(f"cache/{stage}").iterdir()).name
    return key in StageIndex.load(StageDir(Path("cache"), stage, fingerprint))


def _seds(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`seds ...` in its own process group, killed whole when it outlives `timeout` (a hang fails the test)."""
    proc = subprocess.Popen(
        [SEDS, *args], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"seds {' '.join(args)} still ran after {timeout} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def clips(tmp_path, make_video, chdir) -> Path:
    """A project with a.mp4 and b.mp4 (8 frames each), manifest built."""
    data = tmp_path / "data"
    data.mkdir()
    make_video(data / "a.mp4")
    make_video(data / "b.mp4", width=48)
    rows = [{"sample_id": name, "video_path": name, "text": name} for name in ("a.mp4", "b.mp4")]
    write_csv_manifest(tmp_path, rows, root="data", extra_params=FAST)
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    return data


def test_a_clip_replaced_by_another_valid_video_after_probe_is_not_stored_under_the_old_key(clips, make_video, capsys):
    assert main(["run", "probe", "--no-progress"]) == 0
    probed = view_rows("probe")["a.mp4"]["content_hash"]
    replacement = make_video(clips.parent / "other.mp4", frames=12, width=40)  # valid, longer, other pixels
    os.replace(replacement, clips / "a.mp4")

    assert main(["run", "rgb", "--no-progress"]) == 1  # runtime.max_failures: 0
    out = capsys.readouterr().out
    assert "2 items: 1 computed, 0 reused, 1 failed (changed_since_probe: 1)" in out
    view = view_rows("rgb")
    assert (view["a.mp4"]["rgb_status"], view["a.mp4"]["rgb_reason"]) == ("failed", "changed_since_probe")
    assert view["b.mp4"]["rgb_status"] == "ok"
    assert not _stored("rgb", view["a.mp4"]["rgb_key"])  # nothing under the key of the old content
    assert main(["cache", "failures", "rgb"]) == 0
    listed = capsys.readouterr().out
    assert "a.mp4 changed since probe" in listed and probed in listed

    assert main(["run", "probe", "--no-progress"]) == 0  # the remedy: probe takes the new content ...
    assert view_rows("probe")["a.mp4"]["num_frames"] == 12
    assert main(["run", "rgb", "--no-progress"]) == 0  # ... and rgb computes it under its new key
    assert "2 items: 1 computed, 1 reused, 0 failed" in capsys.readouterr().out
    assert view_rows("rgb")["a.mp4"]["rgb_status"] == "ok"


REPLACE_WHILE_DECODING = textwrap.dedent('''
    """Test stand-in for a file replaced while a stage reads it: opening swap.mp4 in decord moves
    replacement.bin over it (the decoder keeps reading the old file). Only in one test's decoder children."""
    import os

    import decord

    _init = decord.VideoReader.__init__


    def __init__(self, uri, *args, **kwargs):
        _init(self, uri, *args, **kwargs)
        if os.path.basename(str(uri)) == "swap.mp4":
            os.replace(os.path.join(os.path.dirname(str(uri)), "replacement.bin"), str(uri))


    decord.VideoReader.__init__ = __init__
''')


def test_a_clip_replaced_while_it_is_computed_is_not_stored(tmp_path, make_video, chdir, monkeypatch, capsys):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(REPLACE_WHILE_DECODING)
    data = tmp_path / "data"
    data.mkdir()
    make_video(data / "swap.mp4")
    os.replace(make_video(tmp_path / "other.mp4", frames=5, width=40), data / "replacement.bin")
    make_video(data / "b.mp4", width=48)
    rows = [{"sample_id": name, "video_path": name, "text": name} for name in ("swap.mp4", "b.mp4")]
    write_csv_manifest(tmp_path, rows, root="data", extra_params=FAST)
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    monkeypatch.setenv("PYTHONPATH", f"{shim}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")  # decoder children
    assert main(["run", "probe", "--no-progress"]) == 1
    assert "2 items: 1 computed, 0 reused, 1 failed (changed_since_probe: 1)" in capsys.readouterr().out
    view = view_rows("probe")
    assert view["swap.mp4"]["probe_reason"] == "changed_since_probe"
    assert not _stored("probe", view["swap.mp4"]["probe_key"])
    assert not (data / "replacement.bin").exists()  # the shim did run


def test_a_fifo_and_a_device_in_the_data_root_are_refused_before_hashing(clips):
    os.mkfifo(clips / "pipe.mp4")  # reading it would block until a writer appears: forever here
    os.symlink("/dev/zero", clips / "zero.mp4")  # a character device: reading it never ends
    rows = [{"sample_id": name, "video_path": name, "text": name} for name in ("a.mp4", "pipe.mp4", "zero.mp4")]
    write_csv_manifest(Path.cwd(), rows, root="data", extra_params=FAST)
    assert main(["manifest"]) == 0
    run = _seds("run", "probe", "--no-progress", "--max-failures", "2")
    assert run.returncode == 0, run.stderr
    assert "3 items: 1 computed, 0 reused, 2 failed (not_a_regular_file: 2)" in run.stdout
    view = view_rows("probe")
    assert {sid: view[sid]["probe_reason"] for sid in ("pipe.mp4", "zero.mp4")} == {
        "pipe.mp4": "not_a_regular_file",
        "zero.mp4": "not_a_regular_file",
    }
    listed = _seds("cache", "failures", "probe").stdout
    assert "pipe.mp4 is a named pipe (FIFO), not a regular file" in listed
    assert "zero.mp4 is a character device, not a regular file" in listed


def test_a_clip_replaced_by_a_fifo_after_probe_is_refused_by_the_item_stage(clips, capsys):
    assert main(["run", "probe", "--no-progress"]) == 0
    (clips / "a.mp4").unlink()
    os.mkfifo(clips / "a.mp4")
    run = _seds("run", "rgb", "--no-progress", "--max-failures", "1", "--set", "runtime.decode_timeout_s=600")
    assert run.returncode == 0, run.stderr
    assert "2 items: 1 computed, 0 reused, 1 failed (not_a_regular_file: 1)" in run.stdout
    assert view_rows("rgb")["a.mp4"]["rgb_reason"] == "not_a_regular_file"
