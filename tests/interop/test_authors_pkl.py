"""The authors' per-video pkl files: into the store (rgb and pose) and back out, on the tiny sample project."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow.parquet as pq

from pipeline.cli import main
from pipeline.interop.views import open_view
from pipeline.rgb.windows import plan_windows
from pipeline.runner.plan import read_view
from pipeline.safe_unpickle import safe_load
from pipeline.store import open_stage


class _CreatesFile:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _rows(project):
    return pq.read_table(project / "manifests/probe.parquet").to_pylist()


def test_rgb_import_records_bad_files_then_exports_what_their_loader_reads(project, tmp_path, capsys):
    rows = _rows(project)
    folder = tmp_path / "i3d"
    folder.mkdir()
    rng = np.random.default_rng(0)
    features = {}
    for row in rows[:-3]:
        n = len(plan_windows(row["num_frames"], window=4, stride=1, max_frames=300, num_windows=4).windows)
        features[row["sample_id"]] = rng.normal(0, 1, (n, 1024)).astype(np.float32)
        with open(folder / f"{row['sample_id']}.pkl", "wb") as f:
            pickle.dump({"name": row["sample_id"], "feature": features[row["sample_id"]]}, f)
    evil, short, missing = (r["sample_id"] for r in rows[-3:])
    marker = tmp_path / "pwned"
    (folder / f"{evil}.pkl").write_bytes(pickle.dumps({"feature": _CreatesFile(str(marker))}))
    (folder / f"{short}.pkl").write_bytes(pickle.dumps({"feature": np.zeros((4, 512), np.float32)}))

    args = ["import", "authors", "rgb", str(folder), "--source", "test-release", "--window", "4", "--num-windows", "4"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "import rgb: 9 imported, 0 reused, 3 failed (1 bad_format, 1 missing_file, 1 unsafe_pickle)" in captured.out
    assert f"{evil}.pkl: refused global" in captured.err and "(N >= 1, 1024)" in captured.err
    assert not marker.exists()

    table, fingerprints = read_view(project / "manifests/authors", "rgb")
    view = {r["sample_id"]: r for r in table.to_pylist()}
    assert {s: view[s]["rgb_reason"] for s in (evil, short, missing)} == {
        evil: "unsafe_pickle",
        short: "bad_format",
        missing: "missing_file",
    }
    reader = open_stage(project / "cache", "rgb", fingerprints["rgb"])
    assert '"source": "test-release"' in reader.stage_dir.stage_json.read_text()
    for row in rows[:-3]:
        item = reader.read(view[row["sample_id"]]["rgb_key"])
        expected = plan_windows(row["num_frames"], window=4, stride=1, max_frames=300, num_windows=4).windows
        np.testing.assert_array_equal(item["windows"], expected)
        np.testing.assert_array_equal(item["features"], features[row["sample_id"]].astype(np.float16))

    assert main(args) == 1  # unchanged files are reused by key
    assert "import rgb: 0 imported, 9 reused, 3 failed" in capsys.readouterr().out
    recorded = [
        r["sample_id"]
        for part in sorted(reader.stage_dir.failures.glob("*.parquet"))
        for r in pq.read_table(part).to_pylist()
    ]
    assert sorted(recorded) == sorted([evil, short, missing])  # the same failures are not recorded twice

    out = tmp_path / "export"
    assert main(["export", "authors", "--view", "manifests/authors/rgb.parquet", "--out", str(out)]) == 0
    assert sorted(p.stem for p in out.glob("*.pkl")) == sorted(features)
    for sample_id, original in features.items():
        back = safe_load(out / f"{sample_id}.pkl")
        assert back["name"] == sample_id and back["feature"].dtype == np.float32
        np.testing.assert_array_equal(back["feature"], original.astype(np.float16).astype(np.float32))


def test_pose_export_import_round_trip_feeds_select(project, tmp_path, capsys):
    """gt keypoints -> authors' pose pkl -> imported pose items: the same arrays, and select reads them."""
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    out = tmp_path / "rtm"
    assert main(["export", "authors", "--view", "gt_keypoints", "--out", str(out)]) == 0
    gt = open_view("gt_keypoints", project / "manifests", project / "cache")
    first = gt.ok_rows()[0]
    raw = safe_load(out / f"{first['sample_id']}.pkl")
    assert raw["keypoints"].shape == (len(raw["img_list"]), 133, 3)
    assert raw["img_list"][0] == f"images{int(gt.read(first)['frames'][0]) + 1:04d}.png"

    assert main(["import", "authors", "pose", str(out), "--source", "round-trip"]) == 0
    imported = open_view("manifests/authors/pose.parquet", project / "manifests", project / "cache")
    assert len(imported.ok_rows()) == len(gt.ok_rows()) == 12
    for row in gt.ok_rows():
        ours = gt.read(row)
        theirs = imported.read(next(r for r in imported.rows if r["sample_id"] == row["sample_id"]))
        for name in ("keypoints", "scores", "frames"):
            np.testing.assert_array_equal(theirs[name], ours[name].astype(theirs[name].dtype), err_msg=name)

    capsys.readouterr()
    assert (
        main(
            [
                "run",
                "select",
                "--no-progress",
                "--set",
                "runtime.manifests=manifests/authors",
                "--set",
                "select.source=pose",
            ]
        )
        == 0
    )
    assert "select: 12 items: 12 computed" in capsys.readouterr().out
    assert main(["run", "select", "--no-progress", "--set", "select.source=gt_keypoints"]) == 0
    from_import = open_view("manifests/authors/select.parquet", project / "manifests", project / "cache")
    from_gt = open_view("select", project / "manifests", project / "cache")
    by_id = {r["sample_id"]: r for r in from_import.ok_rows()}
    for row in from_gt.ok_rows():
        a, b = from_gt.read(row), from_import.read(by_id[row["sample_id"]])
        for name in ("keypoints", "scores", "mask", "frames"):
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_export_refuses_selection_and_duplicate_names(project, capsys):
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    assert main(["run", "select", "--no-progress", "--set", "select.source=gt_keypoints"]) == 0
    capsys.readouterr()
    assert main(["export", "authors", "--view", "select", "--out", "x"]) == 2
    assert "export the pose or gt_keypoints view, not select" in capsys.readouterr().err
    assert main(["export", "authors", "--view", "gt_keypoints", "--out", "y", "--name-column", "split"]) == 2
    assert "share split" in capsys.readouterr().err
    assert not any((project / "y").glob("*.pkl"))


def test_pose_pkl_with_mismatched_img_list_is_a_recorded_failure(project, tmp_path, capsys):
    folder = tmp_path / "rtm"
    folder.mkdir()
    row = _rows(project)[0]
    (folder / f"{row['sample_id']}.pkl").write_bytes(
        pickle.dumps({"keypoints": np.zeros((3, 133, 3), np.float32), "img_list": ["images0001.png", "images0002.png"]})
    )
    assert main(["import", "authors", "pose", str(folder), "--source", "bad"]) == 1
    err = capsys.readouterr().err
    assert f"{row['sample_id']}.pkl: 'img_list' has 2 names for 3 frames of keypoints" in err
