"""The runner over the real probe stage: reuse, growth, shards + finalize, dask, moved data, coverage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main
from pipeline.store import StageDir, StageIndex


def view(stage: str = "probe") -> list[dict]:
    return pq.read_table(f"manifests/{stage}.parquet").to_pylist()


def index_content(stage: str = "probe") -> dict:
    fingerprints = {r[f"{stage}_key"] for r in view(stage)}
    assert fingerprints
    table = pq.read_table(f"manifests/{stage}.parquet")
    import json

    fp = json.loads(table.schema.metadata[b"seds.fingerprints"])[stage]
    index = StageIndex.load(StageDir(Path("cache"), stage, fp))
    return {k: (r.sample_id, r.attrs) for k, r in index.rows.items()}


def run_probe(*extra: str) -> str:
    return main(["run", "probe", "--no-progress", *extra])


def set_params(**sections):
    params = yaml.safe_load(Path("params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_second_run_reuses_everything(project, capsys):
    assert run_probe() == 0
    out = capsys.readouterr().out
    assert "12 items: 0 computed, 12 reused, 0 failed" in out


def test_adding_three_clips_computes_three(project, testdata, capsys):
    assert (
        main(
            [
                "manifest",
                "add-videos",
                *(str(p) for p in sorted((testdata / "videos").iterdir())),
                "--root",
                "data/sample",
                "--csv",
                "data/extra.csv",
                "--text",
                "a real clip",
            ]
        )
        == 0
    )
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["data"]["annotations"].append({"format": "csv", "file": "data/extra.csv", "split": "extra"})
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert main(["manifest"]) == 0
    capsys.readouterr()
    assert run_probe() == 0
    assert "15 items: 3 computed, 12 reused, 0 failed" in capsys.readouterr().out
    extra = {r["sample_id"]: r for r in view() if r["split"] == "extra"}
    assert extra["extra/mmpose__demo.mp4"]["num_frames"] == 5


def test_two_shards_plus_finalize_equal_a_single_run(project, tiny_project_template, capsys):
    single_view = (tiny_project_template / "manifests" / "probe.parquet").read_bytes()
    single_index = {k: v for k, v in index_content().items()}
    shutil.rmtree("cache/probe")
    Path("manifests/probe.parquet").unlink()
    assert run_probe("--shard", "0/2") == 0
    out = capsys.readouterr().out
    assert "shard 0/2" in out
    assert not Path("manifests/probe.parquet").exists()  # a shard task writes no view
    assert main(["finalize", "probe"]) == 3  # shard 1/2 is missing: coverage check fails loudly
    assert "neither in the store nor in the failures table" in capsys.readouterr().err
    assert run_probe("--shard", "1/2") == 0
    assert main(["finalize", "probe"]) == 0
    assert main(["finalize", "probe"]) == 0  # idempotent
    assert Path("manifests/probe.parquet").read_bytes() == single_view
    assert index_content() == single_index


@pytest.mark.slow
def test_dask_local_cluster_with_two_workers_gives_the_same_result(project, tiny_project_template):
    single_view = (tiny_project_template / "manifests" / "probe.parquet").read_bytes()
    single_index = index_content()
    shutil.rmtree("cache/probe")
    assert run_probe("--scheduler", "local", "--workers", "2") == 0
    assert Path("manifests/probe.parquet").read_bytes() == single_view
    assert index_content() == single_index
    shards = list(Path("cache/probe").glob("*/shards/*.h5"))
    assert len({s.name.rsplit("-", 1)[0] for s in shards}) == 2  # each worker wrote its own shards


def test_moving_the_data_root_changes_no_key(project, capsys):
    before = {r["sample_id"]: r["probe_key"] for r in view()}
    shutil.move("data/sample", "moved_data")
    set_params(
        data={
            "root": "moved_data",
            "annotations": [
                {"format": "how2sign", "file": f"moved_data/how2sign_sample_{s}.csv", "split": s}
                for s in ("train", "val", "test")
            ],
        }
    )
    assert main(["manifest"]) == 0
    capsys.readouterr()
    assert run_probe() == 0
    assert "0 computed, 12 reused" in capsys.readouterr().out
    assert {r["sample_id"]: r["probe_key"] for r in view()} == before


def test_changing_an_output_param_changes_every_key(project, capsys):
    before = {r["sample_id"]: r["probe_key"] for r in view()}
    assert run_probe("--set", "probe.full_decode=false") == 0
    assert "12 computed, 0 reused" in capsys.readouterr().out
    after = {r["sample_id"]: r["probe_key"] for r in view()}
    assert after.keys() == before.keys() and not set(after.values()) & set(before.values())


def test_runtime_params_do_not_change_keys(project, capsys):
    before = {r["sample_id"]: r["probe_key"] for r in view()}
    assert run_probe("--set", "runtime.chunk_items=1", "--set", "runtime.shard_items=2", "--workers", "3") == 0
    assert "0 computed, 12 reused" in capsys.readouterr().out
    assert {r["sample_id"]: r["probe_key"] for r in view()} == before


def test_cache_commands(project, capsys):
    assert main(["cache", "verify"]) == 0
    assert "12 items ok" in capsys.readouterr().out
    assert main(["cache", "stats"]) == 0
    assert "1 stage(s), 1 fingerprint(s), 12 items" in capsys.readouterr().out
    assert run_probe("--set", "probe.full_decode=false") == 0
    capsys.readouterr()
    assert main(["cache", "gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 1 fingerprint(s)" in out
    assert len(list(Path("cache/probe").iterdir())) == 2
    assert main(["cache", "gc"]) == 0
    assert len(list(Path("cache/probe").iterdir())) == 1
