"""The benchmarks' own rules: they never import the tests' helpers, and their results say which run
measured each row (benchmarks/run.py). The benchmarks themselves are not run by the test suite."""

from __future__ import annotations

import ast
import importlib.util
import sys

from tests_support import ROOT

TEST_MODULES = {p.stem for p in (ROOT / "tests").rglob("*.py")}


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_benchmarks_import_no_test_code():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & (TEST_MODULES | {"tests", "faults"}), (path.name, imported & TEST_MODULES)
        assert '"tests"' not in path.read_text(), f"{path.name} puts tests/ on sys.path"


def test_results_table_says_which_run_measured_each_row():
    run = _run_module()
    host = {"name": "box", "cpu": "cpu", "cores": 2, "memory_gib": 8, "gpu": "none"}
    row = run.Row(
        "select",
        "vectorised vs per-frame loop",
        10.0,
        1.0,
        "clips/s",
        "higher",
        "",
        "2026-01-01 00:00:00 UTC",
        "abc123",
        "box",
    )
    one = run.markdown([row, row], host, quick=False)
    assert "All rows from one run: 2026-01-01 00:00:00 UTC, commit abc123, machine box." in one
    assert one.rstrip().endswith("| 2026-01-01 00:00:00 UTC, abc123 |")
    older = run.Row(**{**row.__dict__, "date": "2025-12-01 00:00:00 UTC", "commit": "def456-dirty"})
    mixed = run.markdown([row, older], host, quick=False)
    assert "Rows from 2 runs on machine box" in mixed and "commit def456-dirty" in mixed and "commit abc123" in mixed


def test_rows_are_stamped_from_their_benchmarks_record():
    run = _run_module()
    record = {
        "vectorised_clips_per_s": 10.0,
        "per_frame_clips_per_s": 1.0,
        "clips": 2,
        "frames": 3,
        "max_difference": 1e-6,
        "date": "2026-01-01 00:00:00 UTC",
        "commit": "abc123",
        "machine": "box",
    }
    (select,) = [b for b in run.BENCHMARKS if b.name == "select"]
    (row,) = run._stamped(select, record)
    assert (row.date, row.commit, row.machine, row.ratio) == ("2026-01-01 00:00:00 UTC", "abc123", "box", 10.0)


def test_pose_rows_name_each_model_with_its_spread():
    """pose_bench.py writes one record per model (naive, native per frame, stage); run.py makes two rows
    per model whose ratio is the stage's (or per-frame native's) median frames/s over the naive loop's, and
    one of CPU ms per frame (lower is better)."""
    run = _run_module()

    def path(key: str, fps: float) -> dict:
        return {"key": key, "fps": fps, "fps_min": fps - 0.5, "fps_max": fps + 0.5, "cpu_ms_per_frame": 100 / fps}

    models = [
        {"label": label, "frames": 72, "rows": [path("naive", 2.0), path("native", 2.5), path("stage", 3.0 * f)]}
        for label, f in (("rtmpose-m 256x192", 2.0), ("rtmpose-l 384x288", 1.0))
    ]
    record = {"threads": 2, "repeats": 3, "models": models, "date": "2026-01-01 00:00:00 UTC", "commit": "abc123"}
    (pose,) = [b for b in run.BENCHMARKS if b.name == "pose"]
    rows = run._stamped(pose, record)
    assert [r.measure.split(":")[0] for r in rows] == ["rtmpose-m 256x192"] * 3 + ["rtmpose-l 384x288"] * 3
    assert [round(r.ratio, 6) for r in rows] == [3.0, 1.25, round(1 / 3, 6), 1.5, 1.25, round(1 / 1.5, 6)]
    assert "stage 5.5..6.5" in rows[0].note and "median of 3" in rows[0].note
