"""The rgb stage through the runner on the tiny project: contract, exact frames, reuse, failures, feature sets.

Tiny settings (64 px crop of 64 px short side, windows of 8, at most 4 per clip) keep I3D cheap;
the code path is the one full-size runs take.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.cli import main
from pipeline.config import ParamError, load_params
from pipeline.models.i3d import random_i3d
from pipeline.rgb.sets import open_feature_sets, read_mixed
from pipeline.rgb.stage import RgbStage
from pipeline.runner.plan import read_view
from pipeline.store.layout import StageDir, StoreError
from pipeline.store.reader import StageReader
from pipeline.video.decode import read_frames
from tests_support import SMALL_RGB as RGB
from tests_support import TINY_PARAMS, write_params


def _params(project, **rgb) -> dict:
    params = copy.deepcopy(TINY_PARAMS)
    params["rgb"] = {**copy.deepcopy(RGB), **rgb}
    write_params(project, params)
    return params


def _view(stage="rgb") -> dict[str, dict]:
    return {r["sample_id"]: r for r in pq.read_table(f"manifests/{stage}.parquet").to_pylist()}


def _reader(stage_fingerprint: str) -> StageReader:
    return StageReader(StageDir(Path("cache"), "rgb", stage_fingerprint))


@pytest.mark.slow
def test_rgb_stage_writes_the_contract_and_reuses_on_rerun(project, capsys):
    _params(project)
    assert main(["run", "rgb", "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert "rgb: 12 items: 12 computed, 0 reused, 0 failed" in first
    assert "[weights: I3D 'default' random (explicit, checkpoint: random), family bsl1k]" in first
    view = _view()
    _, fingerprints = read_view(project / "manifests", "rgb")
    reader = _reader(fingerprints["rgb"])
    for sample_id, row in view.items():
        assert row["rgb_status"] == "ok", row
        item = reader.read(row["rgb_key"])
        features, windows = item["features"], item["windows"]
        frames = row["num_frames"]
        total = max(1, frames - 7)  # windows of 8 at stride 1 (clips are < 300 frames)
        starts = np.linspace(0, total - 1, 4, dtype=int) if total > 4 else np.arange(total)
        assert features.dtype == np.float16 and features.shape == (len(starts), 1024)
        assert windows.dtype == np.int64 and windows.shape == (len(starts), 8)
        assert windows.tolist() == [list(np.minimum(np.arange(s, s + 8), frames - 1)) for s in starts]
        assert row["num_windows"] == len(starts) and row["total_windows"] == total and row["family"] == "bsl1k"
        assert np.isfinite(features.astype(np.float32)).all()

    # the features are I3D of exactly those frames: decode, crop and normalise one clip by hand
    sample_id = sorted(view)[0]
    row = view[sample_id]
    item = reader.read(row["rgb_key"])
    video = read_frames(
        project / "data/sample" / row["video_path"], row["first_frame"] + item["windows"][1], short_side=64
    )
    h, w = video.shape[1:3]
    crop = video[:, (h - 64) // 2 : (h - 64) // 2 + 64, (w - 64) // 2 : (w - 64) // 2 + 64]
    x = torch.from_numpy(crop).float().div(255).sub(0.5).permute(3, 0, 1, 2)[None]
    with torch.inference_mode():
        expected = random_i3d()(x)[0].numpy()  # unfolded BatchNorm, one window: an independent path
    np.testing.assert_allclose(item["features"][1].astype(np.float32), expected, atol=2e-3, rtol=2e-3)

    assert main(["run", "rgb", "--no-progress"]) == 0
    assert "rgb: 12 items: 0 computed, 12 reused, 0 failed" in capsys.readouterr().out
    # run-time knobs are not in the key: another batch size and decoder count still reuse everything
    assert main(["run", "rgb", "--no-progress", "--set", "rgb.batch_size=1", "--set", "rgb.decoders=2"]) == 0
    assert "0 computed, 12 reused" in capsys.readouterr().out


def test_fingerprint_holds_output_params_only(project):
    _params(project)

    def digest(device="cpu", **overrides):
        params = load_params("params.yaml", {"runtime.device": device, **{f"rgb.{k}": v for k, v in overrides.items()}})
        return RgbStage(params).fingerprint("probe-fp").digest

    base = digest()
    assert digest(batch_size=1) == digest(decoders=3) == digest(precision="fp16") == digest(compile=True) == base
    # The precision a run computes in is part of the key: the CPU computes fp32 whatever rgb.precision says,
    # so a CPU run shares items with an fp32 GPU run, never with a bf16 or fp16 one.
    on_gpu = {precision: digest("cuda", precision=precision) for precision in ("bf16", "fp16", "fp32")}
    assert on_gpu["fp32"] == digest("cuda:1", precision="fp32") == base
    assert len({base, on_gpu["bf16"], on_gpu["fp16"]}) == 3
    renamed = {"other": RGB["feature_sets"]["default"]}
    assert digest(feature_sets=renamed, feature_set="other") == base  # a set's name is not its identity
    changed = [
        digest(window=16),
        digest(num_windows="all"),
        digest(size=48),
        digest(max_frames=100),
        digest(stride=2),
        digest(feature_sets={"default": {"checkpoint": "random", "family": "pytorch_i3d"}}),
    ]
    assert len({base, *changed}) == len(changed) + 1


@pytest.mark.parametrize(
    "rgb, message",
    [
        ({"num_windows": "some"}, r"rgb\.num_windows: 'some' is not a number of windows or 'all'"),
        ({"num_windows": 0}, r"rgb\.num_windows: 0 is below the minimum 1"),
        ({"resize": 48}, r"rgb\.resize: 48 px is smaller than the crop rgb\.size \(64 px\)"),
        ({"feature_set": "aware"}, r"rgb\.feature_set: 'aware' is not a key of rgb\.feature_sets \(default\)"),
        (
            {"feature_sets": {"default": {"checkpoint": "random", "family": "kinetics"}}},
            r"rgb\.feature_sets\.default\.family: 'kinetics' is not one of",
        ),
        ({"feature_sets": {"default": {"checkpont": "x"}}}, r"unknown param rgb\.feature_sets\.default\.checkpont"),
        ({"windows": 8}, r"unknown param rgb\.windows \(did you mean rgb\.window\?\)"),
    ],
)
def test_bad_params_are_named_before_any_work(project, rgb, message):
    _params(project, **rgb)
    with pytest.raises(ParamError, match=message):
        load_params("params.yaml")


def test_missing_checkpoint_stops_the_run_before_any_item(project, capsys):
    _params(project, feature_sets={"default": {"checkpoint": "weights/absent.pt", "family": "bsl1k"}})
    assert main(["run", "rgb", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "rgb.feature_sets.default.checkpoint: checkpoint file weights/absent.pt does not exist" in err
    assert not (project / "cache" / "rgb").exists() or not any((project / "cache" / "rgb").rglob("*.h5"))


def test_undecodable_clip_is_a_recorded_failure(project, capsys):
    _params(project, size=32, resize=32, num_windows=1)
    probe = _view("probe")
    victim = sorted(probe)[3]
    (project / "data/sample" / probe[victim]["video_path"]).write_bytes(b"not a video any more" * 50)
    assert main(["run", "rgb", "--no-progress"]) == 1  # runtime.max_failures is 0 in the tiny project
    out = capsys.readouterr().out
    assert "11 computed, 0 reused, 1 failed (changed_since_probe: 1)" in out  # refused before decoding
    view = _view()
    assert view[victim]["rgb_status"] == "failed" and view[victim]["rgb_reason"] == "changed_since_probe"
    assert sum(r["rgb_status"] == "ok" for r in view.values()) == 11


def test_features_beyond_float16_are_a_failure_not_inf(project, capsys):
    state = random_i3d().state_dict()
    state["Mixed_5c.b0.bn.bias"] = torch.full_like(state["Mixed_5c.b0.bn.bias"], 1e6)  # a broken checkpoint
    torch.save(state, project / "broken.pt")
    _params(
        project,
        size=32,
        resize=32,
        num_windows=1,
        feature_sets={"default": {"checkpoint": "broken.pt", "family": "bsl1k"}},
    )
    assert main(["run", "rgb", "--no-progress", "--max-failures", "-1"]) == 1  # a stage that produced nothing
    out, err = capsys.readouterr()
    assert "0 computed, 0 reused, 12 failed (non_finite_features: 12)" in out
    assert "rgb produced no item: all 12 failed (non_finite_features: 12)" in err


@pytest.mark.slow
def test_two_feature_sets_side_by_side_and_their_mix(project, capsys):
    state = random_i3d(seed=7).state_dict()  # a "domain-aware" I3D in the pytorch-i3d layout, wrapped as bsl1k saves
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, project / "aware.pth.tar")
    sets = {
        "aware": {"checkpoint": "aware.pth.tar", "family": "bsl1k"},
        "agnostic": {"checkpoint": "random", "family": "bsl1k"},
        "kinetics": {"checkpoint": "random", "family": "pytorch_i3d"},
    }  # never computed
    _params(project, feature_sets=sets, feature_set="aware", num_windows=2, size=32, resize=32)
    assert main(["run", "rgb", "--no-progress", "--set", "rgb.feature_set=agnostic"]) == 0
    assert main(["run", "rgb", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "I3D 'agnostic' random (explicit" in out and "I3D 'aware' aware.pth.tar (blake3 " in out

    params = load_params("params.yaml")
    with pytest.raises(
        StoreError,
        match=r"rgb feature set 'kinetics' .* was never computed .*"
        r"`seds run rgb --set rgb\.feature_set=kinetics`",
    ):
        open_feature_sets(params, ["aware", "kinetics"])
    stores = open_feature_sets(params, ["aware", "agnostic"])
    assert stores["aware"].fingerprint != stores["agnostic"].fingerprint
    alpha = 0.8  # CiCo/SEDS: (1 - alpha) * aware + alpha * agnostic
    for row in read_view(project / "manifests", "probe")[0].to_pylist()[:3]:
        aware, agnostic = stores["aware"].read(row), stores["agnostic"].read(row)
        assert not np.allclose(aware["features"], agnostic["features"], atol=1e-2)
        mixed, windows = read_mixed(stores, {"aware": 1 - alpha, "agnostic": alpha}, row)
        expected = (1 - alpha) * aware["features"].astype(np.float32) + alpha * agnostic["features"].astype(np.float32)
        np.testing.assert_allclose(mixed, expected, rtol=1e-6, atol=1e-6)
        assert np.array_equal(windows, aware["windows"]) and mixed.dtype == np.float32

    # What the dvc.yaml stage runs (--used-feature-sets): the sets something reads, each fingerprint once,
    # rgb.feature_set last (its view is the one written). train.rgb_views mixes aware and agnostic:
    sets["kinetics"]["checkpoint"] = "absent.pth"  # read by nothing: neither computed nor needed
    params = _params(project, feature_sets=sets, feature_set="aware", num_windows=2, size=32, resize=32)
    params["train"] = {"rgb_views": ["set:agnostic", "set:aware"]}
    write_params(project, params)
    assert main(["run", "rgb", "--no-progress", "--used-feature-sets"]) == 0
    out = capsys.readouterr().out
    assert out.count("rgb: 12 items: 0 computed, 12 reused") == 2 and "kinetics" not in out
    assert out.index("I3D 'agnostic'") < out.index("I3D 'aware'")
    assert read_view(project / "manifests", "rgb")[1]["rgb"] == stores["aware"].fingerprint
    # The sample's case: the trainer reads the rgb view only, so only rgb.feature_set is computed.
    params["train"] = {"rgb_views": ["rgb"]}
    write_params(project, params)
    assert main(["run", "rgb", "--no-progress", "--used-feature-sets"]) == 0
    assert capsys.readouterr().out.count("rgb: 12 items") == 1


def test_two_names_of_one_fingerprint_are_computed_once(project, capsys):
    """Two feature sets with random weights (the offline choice for both, as a profile with every
    checkpoint `random` has) are one computation: their items would be the same bytes."""
    sets = {
        "aware": {"checkpoint": "random", "family": "bsl1k"},
        "agnostic": {"checkpoint": "random", "family": "bsl1k"},
    }
    params = _params(project, feature_sets=sets, feature_set="aware", num_windows=1, size=32, resize=32)
    params["train"] = {"rgb_views": ["set:aware", "set:agnostic"]}
    write_params(project, params)
    assert main(["run", "rgb", "--no-progress", "--used-feature-sets"]) == 0
    out = capsys.readouterr().out
    assert out.count("rgb: 12 items: 12 computed") == 1 and "I3D 'aware'" in out and "I3D 'agnostic'" not in out
    stores = open_feature_sets(load_params("params.yaml"), ["aware", "agnostic"])
    assert stores["aware"].fingerprint == stores["agnostic"].fingerprint  # the trainer finds both by key


class DictReader:
    """A store reader holding items in memory (the store itself is tested in tests/store)."""

    def __init__(self, items: dict):
        self.items = items

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def read(self, key: str) -> dict:
        return self.items[key]


def test_mixing_refuses_sets_with_different_windows():
    from pipeline.rgb.sets import FeatureSetStore, mix

    row = {"sample_id": "s1", "content_hash": "c" * 32, "start_s": None, "end_s": None}
    windows = np.arange(16).reshape(2, 8)
    ones, twos = np.ones((2, 1024), np.float16), np.full((2, 1024), 2, np.float16)
    a = FeatureSetStore("a", "fp-a", None)
    b = FeatureSetStore("b", "fp-b", None)
    a.reader = DictReader({a.key(row): {"features": ones, "windows": windows}})
    b.reader = DictReader({b.key(row): {"features": twos, "windows": windows + 1}})
    with pytest.raises(ValueError, match="hold different windows"):
        read_mixed({"a": a, "b": b}, {"a": 0.5, "b": 0.5}, row)
    b.reader = DictReader({b.key(row): {"features": twos, "windows": windows}})
    mixed, _ = read_mixed({"a": a, "b": b}, {"a": 0.25, "b": 0.75}, row)
    np.testing.assert_allclose(mixed, 1.75)
    with pytest.raises(ValueError, match="differ in shape"):
        mix({"a": ones, "b": twos[:1]}, {"a": 0.5, "b": 0.5})
    with pytest.raises(KeyError, match="rgb feature set 'a' has no item for sample s2"):
        a.read(dict(row, sample_id="s2", content_hash="d" * 32))
