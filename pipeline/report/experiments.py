"""The paper's ablations as a table: what each finished DVC experiment changed and what it scored.

Experiments are `dvc exp run -S key=value` runs of the train and evaluate stages (docs/ablations.md).
DVC keeps each one's params and metrics; `dvc exp show --json` (run as a subprocess: DVC's own
interface, not its Python internals) lists them per baseline commit. A row is one experiment, or a
baseline commit that has metrics: its params that differ from the baseline's, and T2V / V2T R@1,
R@5, R@10 and MedR from `<evaluate.out>/metrics.json`. Experiments without that file (failed or still
queued) are counted, not shown. The metrics file must be tracked by git (it is a `cache: false`
metric of dvc.yaml), or DVC cannot keep it with the experiment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UserError

METRIC_KEYS = ("R@1", "R@5", "R@10", "MedR")
DEFAULT_EVALUATE_OUT = "runs/evaluate"


class AblationError(UserError, RuntimeError):
    """`dvc exp show` failed or gave something that is not its JSON."""


@dataclass
class AblationRow:
    experiment: str
    rev: str
    timestamp: str
    changed: dict[str, Any]  # dotted param -> value, where it differs from the baseline
    params: dict[str, Any]  # every dotted param of the experiment
    t2v: dict[str, float]
    v2t: dict[str, float]


def _dvc() -> str:
    """The dvc of this environment (beside its python), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.is_file() else (shutil.which("dvc") or "dvc")


def exp_show(project: Path) -> list[dict[str, Any]]:
    """The parsed output of `dvc exp show --json` in `project`."""
    try:
        done = subprocess.run([_dvc(), "exp", "show", "--json"], cwd=project, capture_output=True, text=True)
    except FileNotFoundError:
        raise AblationError("dvc is not installed (pip install dvc, or run scripts/setup.sh)") from None
    if done.returncode != 0:
        raise AblationError(f"dvc exp show failed in {project} (exit {done.returncode}): {done.stderr.strip()}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as err:
        raise AblationError(f"dvc exp show --json in {project} did not print JSON: {err}") from None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _params(data: dict[str, Any]) -> dict[str, Any]:
    return _flatten((data.get("params") or {}).get("params.yaml", {}).get("data") or {})


def _metrics(data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
    path = f"{params.get('evaluate.out') or DEFAULT_EVALUATE_OUT}/metrics.json"
    found = (data.get("metrics") or {}).get(path, {}).get("data")
    if not found or "t2v" not in found or "v2t" not in found:
        return None
    return found


def _row(name: str, data: dict[str, Any], baseline: dict[str, Any]) -> AblationRow | None:
    params = _params(data)
    metrics = _metrics(data, params)
    if metrics is None:
        return None
    changed = {k: v for k, v in params.items() if baseline.get(k, object()) != v}
    changed.update({k: None for k in baseline if k not in params})
    return AblationRow(
        name,
        str(data.get("rev", ""))[:7],
        str(data.get("timestamp") or ""),
        dict(sorted(changed.items())),
        params,
        {k: metrics["t2v"].get(k) for k in METRIC_KEYS},
        {k: metrics["v2t"].get(k) for k in METRIC_KEYS},
    )


def ablation_rows(shown: list[dict[str, Any]]) -> tuple[list[AblationRow], int]:
    """Rows of every finished experiment (and baseline commit with metrics), oldest first, and the
    number of experiments left out because they have no metrics."""
    if not isinstance(shown, list):
        raise AblationError(f"dvc exp show --json gave a {type(shown).__name__}, expected a list of commits")
    rows, unfinished = [], 0
    for commit in shown:
        if commit.get("rev") == "workspace":
            continue
        data = commit.get("data") or {}
        baseline = _params(data)
        base_row = _row(commit.get("name") or str(commit.get("rev", ""))[:7], data, baseline)
        if base_row is not None:
            rows.append(base_row)
        for experiment in commit.get("experiments") or []:
            revs = experiment.get("revs") or []
            if not revs:
                continue
            latest = revs[0]
            row = _row(
                experiment.get("name") or latest.get("name") or str(latest.get("rev", ""))[:7],
                latest.get("data") or {},
                baseline,
            )
            if row is None:
                unfinished += 1
            else:
                rows.append(row)
    rows.sort(key=lambda r: r.timestamp)
    return rows, unfinished


def _value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return "null" if value is None else str(value)


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def format_markdown(rows: list[AblationRow]) -> str:
    """A Markdown table: experiment, changed params, T2V and V2T R@1/R@5/R@10/MedR."""
    head = ["experiment", "changed params"] + [f"T2V {k}" for k in METRIC_KEYS] + [f"V2T {k}" for k in METRIC_KEYS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        changed = ", ".join(f"{k}={_value(v)}" for k, v in row.changed.items()) or "(baseline)"
        cells = [row.experiment, changed.replace("|", "\\|")]
        cells += [_number(row.t2v[k]) for k in METRIC_KEYS] + [_number(row.v2t[k]) for k in METRIC_KEYS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
