"""The decoder child (pipeline/video/service.py) when its parent is gone: it exits promptly, even in
the middle of a decode that would never end, and quietly (no traceback on the broken answer pipe)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

PARENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline.video.service import DecodeService

    decoder = DecodeService(timeout_s=600)
    decoder.submit_probe(Path(sys.argv[1]))  # a FIFO with no writer: the child blocks opening it, for ever
    print(decoder._proc.pid, flush=True)
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def test_a_decoder_child_stuck_in_a_decode_dies_with_its_killed_parent(tmp_path):
    fifo = tmp_path / "hangs.mp4"
    os.mkfifo(fifo)
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "wb") as err:
        parent = subprocess.Popen(
            [sys.executable, "-c", PARENT, str(fifo)], stdout=subprocess.PIPE, stderr=err, text=True
        )
    child = int(parent.stdout.readline())
    time.sleep(3)  # let the child start and block on the FIFO
    assert _alive(child)
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    still = _alive(child)
    if still:
        os.kill(child, signal.SIGKILL)
    assert not still, "the decoder child outlived its parent by 10 s"
    assert "Traceback" not in stderr.read_text()


def test_a_decoder_child_whose_answers_cannot_be_delivered_exits_quietly(tmp_path, make_video):
    video = make_video(tmp_path / "clip.mp4")
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline.video.service"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert b'"ready"' in child.stdout.readline()
    child.stdout.close()  # whoever reads the answers is gone
    child.stdin.write(f'{{"op": "probe", "path": "{video}", "full_decode": true, "id": 0}}\n'.encode())
    child.stdin.flush()
    try:
        code = child.wait(timeout=60)
    finally:
        child.kill()
    assert code == 0
    assert "Traceback" not in child.stderr.read().decode()
