"""The first `make`: scripts/setup.sh into a fresh venv with empty package caches, as on a new machine.

    python benchmarks/setup_bench.py [--out FILE]

Cold means empty uv and pip caches (UV_CACHE_DIR, PIP_CACHE_DIR pointed at empty folders), so every
package comes from its index; torch comes from the local wheel where setup.sh finds one (/opt/wheels on
this machine kind), as it does for every user of such a machine. Reports the wall time, the venv's size
on disk, and the CPU time of the whole install (steadier than wall time on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        venv, caches = Path(tmp) / "venv", Path(tmp) / "caches"
        env = dict(os.environ, UV_CACHE_DIR=str(caches / "uv"), PIP_CACHE_DIR=str(caches / "pip"))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [str(ROOT / "scripts" / "setup.sh"), str(venv)], cwd=ROOT, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"setup.sh failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return {
            "seconds": round(seconds, 1),
            "venv_bytes": size_bytes(venv),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "caches": "empty (cold)",
            "load_average_1min": round(os.getloadavg()[0], 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
