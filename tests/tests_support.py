"""Helpers for tests that build small projects by hand (not fixtures: plain functions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from pipeline.scratch import BASE_RUNTIME, fresh_clone, write_csv_manifest  # noqa: F401  (the tests' imports)

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = (ROOT / ".." / "shared" / "testdata").resolve()
RELEASE_REFERENCE = (ROOT / ".." / "shared" / "reference" / "seds_authors_state_dict.json").resolve()
RELEASE_SPLITS = (ROOT / ".." / "shared" / "reference" / "seds_release_splits").resolve()  # data_h2, data_ph, data_csl
REQUIRE_TESTDATA = "SEDS_REQUIRE_TESTDATA"  # "1" (CI, .ci/run): a test that needs the shared files fails without them


def shared_file(path: Path, what: str, where: Path, how: str) -> Path:
    """A file of ../shared beside the project root (`what`, found at `where`). Where it is missing (a
    fresh clone) the test skips with one line saying where and how to get it, so the rest of the suite
    still runs; CI sets SEDS_REQUIRE_TESTDATA=1 and such a test fails instead."""
    if not path.is_file():
        message = f"needs {what} at {where}: {how}"
        if os.environ.get(REQUIRE_TESTDATA) == "1":
            pytest.fail(f"{message} ({REQUIRE_TESTDATA}=1: this run may skip nothing)")
        pytest.skip(message)
    return path


TINY_PARAMS = {
    "runtime": {
        "store": "cache",
        "manifests": "manifests",
        "scheduler": "synchronous",
        "workers": 1,
        "threads_per_worker": 2,
        "chunk_items": 4,
        "max_failures": 0,
        "decode_timeout_s": 60,
    },
    "sample": {
        "out": "data/sample",
        "sentences": 4,
        "renders": ["train", "val", "test"],
        "width": 160,
        "height": 120,
        "gloss_frames": 8,
        "min_glosses": 2,
        "max_glosses": 3,
        "seed": 1,
    },
    "data": {
        "root": "data/sample",
        "annotations": [
            {"format": "how2sign", "file": f"data/sample/how2sign_sample_{s}.csv", "split": s}
            for s in ("train", "val", "test")
        ],
    },
    "probe": {"full_decode": True, "out_of_range": "clamp"},
}

# The SEDS network at test sizes: the authors' structure, narrow and shallow, CLIP parts random (explicit).
TINY_MODEL = {
    "clip_checkpoint": "random",
    "gcn_joint_channels": [8, 8, 16],
    "gcn_part_channels": 16,
    "tower_width": 32,
    "tower_layers": 1,
    "tower_heads": 2,
    "embed_dim": 32,
    "text_width": 32,
    "text_layers": 1,
    "text_heads": 2,
    "cgaf_heads": 4,
    "cgaf_ff": 64,
    "max_words": 12,
    "threads": 1,
}

# The whole dvc.yaml graph at the smallest sizes that still exercise every stage (random pose and I3D
# weights, the SEDS network narrow with random CLIP parts): `dvc repro` of a fresh clone with these takes about a
# minute.
# Small real pose and rgb settings (random weights) for tests that run those stages as processes.
SMALL_POSE = {
    "model": "rtmpose-m_8xb64-270e_coco-wholebody-256x192",
    "checkpoint": "random",
    "frames": "uniform",
    "frames_value": 2,
    "flip_test": False,
    "batch_size": 4,
    "chunk_frames": 8,
}
SMALL_RGB = {
    "size": 64,
    "resize": 64,
    "window": 8,
    "stride": 1,
    "num_windows": 4,
    "batch_size": 6,
    "feature_set": "default",
    "feature_sets": {"default": {"checkpoint": "random", "family": "bsl1k"}},
}

TINY_GRAPH_PARAMS = {
    **TINY_PARAMS,
    "pose": {"frames": "uniform", "frames_value": 2, "flip_test": False, "batch_size": 8, "chunk_frames": 8},
    "rgb": {"size": 64, "resize": 64, "window": 8, "num_windows": 4, "batch_size": 8},
    "train": {**TINY_MODEL, "steps": 4, "batch_size": 4, "epochs": 2, "eval_every": 1},
    "evaluate": {"figure_queries": 1, "figure_frames": 2},  # the figure path runs; tests/report checks the figures
}


def tiny_clone(dest: Path, params: dict = TINY_GRAPH_PARAMS) -> Path:
    """A fresh clone whose params.yaml sections are overridden by `params` (key by key)."""
    project = fresh_clone(dest)
    merged = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in params.items():
        merged[section] = {**merged.get(section, {}), **values}
    (project / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return project


def write_params(project: Path, params: dict) -> Path:
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def dvc(project: Path, *args: str, runner: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """This environment's dvc with `args` in `project` (started by the command `runner` when given)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(
        [*runner, str(Path(sys.executable).parent / "dvc"), *args], cwd=project, env=env, capture_output=True, text=True
    )


def view_rows(stage: str) -> dict[str, dict]:
    """manifests/<stage>.parquet of the project in the working directory, as rows by sample_id."""
    return {r["sample_id"]: r for r in pq.read_table(f"manifests/{stage}.parquet").to_pylist()}


# The CPU-only behaviour of runtime.decoder (auto falls back, nvdec refuses). CI never has a GPU, so it
# always runs there; on a GPU machine the same checks would test the other branch, which gpu.sh covers.
needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a CUDA device")
