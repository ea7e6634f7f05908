"""One `seds` command in a process of its own, with its seconds and peak memory (benchmarks share this).

Peaks are VmHWM from /proc: the high-water mark of a process's own program (ru_maxrss would also count
the parent's pages a child was forked with before its exec); children (a decoder child, dask workers)
are found by their parent pid and sampled every 50 ms while alive, each reported alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the measured process; prints, as its last line, its seconds, its own peak RSS and that of each
# child process it started (MiB).
_MEASURED = """
def run():
    from pipeline.cli import main
    return main(sys.argv[1:])

import json, os, sys, threading, time

def peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024

def children():
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[1] == me:
                    yield pid
        except (OSError, IndexError):
            pass

seen, stop = {}, threading.Event()
def watch():
    while not stop.wait(0.05):
        for pid in children():
            try:
                seen[pid] = max(seen.get(pid, 0.0), peak_mib(pid))
            except (OSError, StopIteration):
                pass
threading.Thread(target=watch, daemon=True).start()
started = time.perf_counter()
code = run()
seconds = time.perf_counter() - started
stop.set()
print(json.dumps({"code": code, "seconds": seconds, "peak_rss_mib": round(peak_mib("self"), 1),
                  "children_peak_rss_mib": sorted(round(v, 1) for v in seen.values())}))
"""


def measured(*command: str, body: str | None = None) -> dict:
    """`seds COMMAND` in its own process: {seconds, peak_rss_mib, children_peak_rss_mib, ...}; exits on
    failure. `body` replaces the seds call with Python code defining `run()` (returns 0 on success; what
    it prints as `EXTRA <json>` lines is merged into the record)."""
    script = _MEASURED if body is None else body + _MEASURED.split("    return main(sys.argv[1:])\n", 1)[1]
    done = subprocess.run(
        [sys.executable, "-c", script, *command],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))),
    )
    lines = done.stdout.strip().splitlines()
    record = json.loads(lines[-1]) if done.returncode == 0 and lines else {"code": done.returncode}
    if record["code"] != 0:
        raise SystemExit(
            f"{' '.join(command) or 'measured code'} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    for line in lines:
        if line.startswith("EXTRA "):
            record.update(json.loads(line[len("EXTRA ") :]))
    record["output"] = "\n".join(line for line in lines[:-1] if not line.startswith("EXTRA "))
    return record
