"""`seds run pose rgb`: the pose and rgb stages over one decode per clip, on the tiny project's real clips.

The pose stage samples other frames than the rgb windows (uniform 2 against thinned windows of 4) and
cuts clips into one-frame pieces, so the union of both stages' frames is decoded and every rgb frame
rides with a pose piece. What must hold: the same keys, arrays and view bytes as the stages run one
after the other; a change to an rgb param computes rgb items only and decodes each clip once, for rgb
alone; shards and a dask LocalCluster give the same views; a decode failure fails both items alike.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.runner.plan import read_view
from pipeline.runner.runlog import RUNS_FOLDER, read_runs
from pipeline.store.layout import StageDir
from pipeline.store.reader import StageReader
from tests_support import TINY_PARAMS, view_rows, write_params

POSE = {
    "model": "rtmpose-m_8xb64-270e_coco-wholebody-256x192",
    "checkpoint": "random",
    "frames": "uniform",
    "frames_value": 2,
    "flip_test": False,
    "batch_size": 4,
    "chunk_frames": 1,
}
RGB = {"size": 32, "resize": 40, "window": 4, "num_windows": 3, "batch_size": 6}
STAGES = ("pose", "rgb")


def _params(project: Path, **rgb) -> None:
    params = copy.deepcopy(TINY_PARAMS)
    params["runtime"]["threads_per_worker"] = 1
    params["pose"] = dict(POSE)
    params["rgb"] = {**RGB, **rgb}
    write_params(project, params)


def _store(project: Path, stage: str) -> dict[str, tuple[dict, dict]]:
    """sample_id -> (arrays, attrs) of the stage's items named by its view."""
    _, fingerprints = read_view(project / "manifests", stage)
    out = {}
    with StageReader(StageDir(project / "cache", stage, fingerprints[stage])) as reader:
        for sample_id, row in view_rows(stage).items():
            out[sample_id] = (reader.read(row[f"{stage}_key"]), reader.attrs(row[f"{stage}_key"]))
    return out


def _assert_same_outputs(a: Path, b: Path, chdir) -> None:
    for stage in STAGES:
        assert (a / f"manifests/{stage}.parquet").read_bytes() == (b / f"manifests/{stage}.parquet").read_bytes(), stage
        chdir(a)
        first = _store(a, stage)
        chdir(b)
        second = _store(b, stage)
        assert first.keys() == second.keys() and len(first) == 12
        for sample_id, (arrays, attrs) in first.items():
            other_arrays, other_attrs = second[sample_id]
            assert attrs == other_attrs, (stage, sample_id)
            assert arrays.keys() == other_arrays.keys()
            for name, array in arrays.items():
                assert array.dtype == other_arrays[name].dtype, (stage, sample_id, name)
                np.testing.assert_array_equal(array, other_arrays[name], err_msg=f"{stage} {sample_id} {name}")


def _decodes(project: Path, stage: str) -> dict[str, int]:
    """The decode counts of the stage's latest run record."""
    _, fingerprints = read_view(project / "manifests", stage)
    runs = read_runs(StageDir(project / "cache", stage, fingerprints[stage]).path / RUNS_FOLDER)
    return runs[-1]["decodes"]


@pytest.mark.slow
def test_one_decode_equals_separate_stages_and_an_rgb_change_decodes_for_rgb_alone(project, tmp_path, chdir, capsys):
    _params(project)
    separate = tmp_path / "separate"
    shutil.copytree(project, separate, symlinks=True)

    assert main(["run", "pose", "rgb", "--no-progress"]) == 0
    out = capsys.readouterr().out
    for stage in STAGES:
        assert f"{stage}: 12 items: 12 computed, 0 reused, 0 failed" in out
    assert "decodes: 12 clip(s) decoded once each (12 for pose+rgb[default])" in out
    assert _decodes(project, "pose") == _decodes(project, "rgb") == {"pose+rgb[default]": 12}

    chdir(separate)
    for stage in STAGES:
        assert main(["run", stage, "--no-progress"]) == 0
    _assert_same_outputs(project, separate, chdir)

    chdir(project)
    pose_view = (project / "manifests/pose.parquet").read_bytes()
    _params(project, num_windows=2)  # an rgb knob: rgb items only, each clip decoded once, for rgb
    capsys.readouterr()
    assert main(["run", "pose", "rgb", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "pose: 12 items: 0 computed, 12 reused" in out and "rgb: 12 items: 12 computed, 0 reused" in out
    assert "decodes: 12 clip(s) decoded once each (12 for rgb[default])" in out
    assert _decodes(project, "rgb") == {"rgb[default]": 12}
    assert (project / "manifests/pose.parquet").read_bytes() == pose_view  # so DVC skips select
    assert all(row["num_windows"] <= 2 for row in view_rows("rgb").values())

    assert main(["run", "pose", "rgb", "--no-progress"]) == 0  # both have every clip: nothing is decoded
    assert "decodes: 0 clip(s) decoded once each (none needed)" in capsys.readouterr().out


@pytest.mark.slow
def test_shards_and_a_dask_cluster_write_the_same_views(project, tmp_path, chdir, capsys):
    _params(project)
    sharded = tmp_path / "sharded"
    shutil.copytree(project, sharded, symlinks=True)
    assert main(["run", "pose", "rgb", "--no-progress", "--scheduler", "local", "--workers", "1"]) == 0
    assert "decodes: 12 clip(s) decoded once each (12 for pose+rgb[default])" in capsys.readouterr().out

    chdir(sharded)
    for task in ("0/2", "1/2"):
        assert main(["run", "pose", "rgb", "--no-progress", "--shard", task]) == 0
        out = capsys.readouterr().out
        assert f"pose shard {task}:" in out and f"rgb shard {task}:" in out
        assert not (sharded / "manifests/pose.parquet").exists()  # an array task writes no view
    assert main(["finalize", "pose", "rgb"]) == 0
    _assert_same_outputs(project, sharded, chdir)


def test_a_clip_that_fails_to_decode_fails_both_stages_alike(project, capsys):
    _params(project)
    # Probe saw a whole clip; make its view place the clip past the video's end, so no decoder can deliver
    # its frames (truncated): the one shared decode fails, and with it both stages' items.
    table = pq.read_table("manifests/probe.parquet")
    rows = table.to_pylist()
    broken = rows[0]["sample_id"]
    rows[0]["first_frame"] += 10_000
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), "manifests/probe.parquet")
    assert main(["run", "pose", "rgb", "--no-progress", "--max-failures", "1"]) == 0
    out = capsys.readouterr().out
    for stage in STAGES:
        assert f"{stage}: 12 items: 11 computed, 0 reused, 1 failed (truncated: 1)" in out
    pose, rgb = view_rows("pose")[broken], view_rows("rgb")[broken]
    assert pose["pose_status"] == rgb["rgb_status"] == "failed"
    assert pose["pose_reason"] == rgb["rgb_reason"] == "truncated"


def test_only_pose_and_rgb_run_together(project, capsys):
    _params(project)
    assert main(["run", "pose", "select", "--no-progress"]) == 2
    assert "only pose and rgb run together" in capsys.readouterr().err
