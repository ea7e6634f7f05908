"""Run records: one small JSON file per run of a stage, so reports can say how long each stage took.

Item stages print a summary line and forget it; a report written later (`seds report run`) needs the
time, the counts and the weights of the run that produced the items it describes. So every run of an
item stage leaves `<store>/<stage>/<fingerprint>/runs/<finished UTC>-<writer id>.json` beside the items
it wrote: one file per run (array tasks on many hosts never share a file), written atomically, tied
to the fingerprint whose items it timed, and removed with that fingerprint by `seds cache gc`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipeline.store.layout import TMP_PREFIX, atomic_write_bytes, new_writer_id

RUNS_FOLDER = "runs"


def record_run(folder: Path, record: dict[str, Any]) -> Path:
    """Write `record` plus its finishing time (`finished_utc`, ISO 8601) as a new file in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{stamp}-{new_writer_id()}.json"
    payload = {**record, "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())
    return path


def read_runs(folder: Path) -> list[dict[str, Any]]:
    """Every run record in `folder`, oldest first (files that do not parse are named in `errors`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = []
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(TMP_PREFIX)):
        try:
            runs.append({**json.loads(path.read_text()), "file": path.name})
        except (OSError, json.JSONDecodeError) as err:
            runs.append({"file": path.name, "error": f"{path} does not read as JSON: {err}"})
    return runs
