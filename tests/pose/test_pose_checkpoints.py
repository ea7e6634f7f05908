"""Checkpoint resolution (URL cache, paths, random) and weights-only loading with the numpy allowlist."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models.checkpoints import (
    CACHE_ENV,
    CheckpointError,
    cache_dir,
    load_checkpoint,
    load_state_dict,
    resolve_checkpoint,
)
from pipeline.models.rtmpose.model import RTMPose, load_rtmpose, random_init
from pipeline.models.rtmpose.spec import MODELS
from pose_support import MODEL_M


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "ckpt-cache"))
    return tmp_path / "ckpt-cache"


def official_meta() -> dict:
    """What mmengine/mmpose put in `meta`: text, numbers and dataset metadata holding numpy arrays."""
    rng = np.random.default_rng(0)
    return {
        "mmengine_version": "0.4.0",
        "time": "20230125_120000",
        "epoch": 270,
        "iter": 123456,
        "seed": 21,
        "dataset_meta": {
            "dataset_name": "coco_wholebody",
            "num_keypoints": 133,
            "flip_indices": list(range(133)),
            "keypoint_colors": rng.integers(0, 255, (133, 3)).astype(np.uint8),
            "skeleton_link_colors": rng.integers(0, 255, (65, 3)).astype(np.uint8),
            "dataset_keypoint_weights": np.ones(133, dtype=np.float32),
            "sigmas": rng.random(133).astype(np.float32),
            "upper_body_ids": np.arange(11, dtype=np.int64),
            "areas": rng.random(4),
        },
        "best_score": np.float64(0.648),
    }


def save_official(path, state_dict) -> None:
    torch.save({"meta": official_meta(), "state_dict": state_dict}, path)


def test_official_style_checkpoint_loads_weights_only_with_the_allowlist(tmp_path):
    path = tmp_path / "official.pth"
    save_official(path, {"w": torch.arange(4.0)})
    with pytest.raises(Exception, match="numpy"):  # what torch alone does with such a file
        torch.load(path, weights_only=True)
    loaded = load_checkpoint(path)
    assert loaded["meta"]["dataset_meta"]["keypoint_colors"].dtype == np.uint8
    np.testing.assert_array_equal(loaded["meta"]["dataset_meta"]["sigmas"], official_meta()["dataset_meta"]["sigmas"])
    assert torch.equal(load_state_dict(path)["w"], torch.arange(4.0))


def test_checkpoint_written_under_numpy_1_loads(tmp_path):
    """Checkpoints of 2023 name numpy's functions `numpy.core.multiarray.*` (numpy 2: `numpy._core`)."""
    modern, old = tmp_path / "numpy2.pth", tmp_path / "numpy1.pth"
    save_official(modern, {"w": torch.ones(2)})
    with zipfile.ZipFile(modern) as src, zipfile.ZipFile(old, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            dst.writestr(info, data)
    assert "numpy.core.multiarray._reconstruct" in torch.serialization.get_unsafe_globals_in_checkpoint(str(old))
    assert load_checkpoint(old)["meta"]["dataset_meta"]["sigmas"].shape == (133,)


@pytest.mark.parametrize(
    "extra, named", [(argparse.Namespace(lr=0.1), "argparse.Namespace"), (np.array([{"a": 1}], dtype=object), "Object")]
)
def test_unlisted_globals_are_refused_with_a_clear_error(tmp_path, extra, named):
    path = tmp_path / "hostile.pth"
    torch.save({"meta": {"args": extra}, "state_dict": {"w": torch.ones(1)}}, path)
    with pytest.raises(CheckpointError, match="refused to load") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and named in str(err.value)


def test_rtmpose_loads_an_official_style_checkpoint_strictly(tmp_path):
    spec = MODELS[MODEL_M]
    source = RTMPose(spec)
    random_init(source, seed=3)
    path = tmp_path / "rtmpose-m.pth"
    save_official(path, source.state_dict())
    model = load_rtmpose(spec, resolve_checkpoint(str(path), "pose.checkpoint"))
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert not model.training

    broken = dict(source.state_dict())
    del broken["head.cls_x.weight"]
    broken["head.extra.weight"] = torch.zeros(1)
    broken["backbone.stem.0.conv.weight"] = torch.zeros(1, 3, 3, 3)
    save_official(tmp_path / "broken.pth", broken)
    with pytest.raises(CheckpointError) as err:
        load_rtmpose(spec, resolve_checkpoint(str(tmp_path / "broken.pth"), "pose.checkpoint"))
    message = str(err.value)
    assert "1 missing keys: head.cls_x.weight" in message
    assert "1 unexpected keys: head.extra.weight" in message
    assert "backbone.stem.0.conv.weight: checkpoint (1, 3, 3, 3) vs model (24, 3, 3, 3)" in message


def test_random_is_explicit_and_seeded():
    checkpoint = resolve_checkpoint("random", "pose.checkpoint")
    assert checkpoint.is_random and checkpoint.content_hash == "random"
    assert "random (explicit" in checkpoint.describe()
    a, b = (load_rtmpose(MODELS[MODEL_M], checkpoint) for _ in range(2))
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_missing_path_names_the_param(tmp_path):
    with pytest.raises(CheckpointError, match=r"pose\.checkpoint: checkpoint file .*nope\.pth does not exist"):
        resolve_checkpoint(str(tmp_path / "nope.pth"), "pose.checkpoint")


def test_content_hash_ignores_path_and_name(tmp_path):
    path = tmp_path / "a.pth"
    torch.save({"state_dict": {"w": torch.ones(3)}}, path)
    moved = tmp_path / "elsewhere" / "b.pth"
    moved.parent.mkdir()
    shutil.copy(path, moved)
    assert resolve_checkpoint(str(path), "k").content_hash == resolve_checkpoint(str(moved), "k").content_hash
    torch.save({"state_dict": {"w": torch.zeros(3)}}, moved)
    assert resolve_checkpoint(str(path), "k").content_hash != resolve_checkpoint(str(moved), "k").content_hash


def _published(tmp_path, stem: str) -> tuple[str, bytes]:
    """A file named the OpenMMLab way, <stem>-<sha256[:8]>_<date>.pth, as a file:// URL."""
    scratch = tmp_path / "scratch.pth"
    torch.save({"state_dict": {"w": torch.arange(5.0)}}, scratch)
    data = scratch.read_bytes()
    served = tmp_path / "server" / f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}_20230125.pth"
    served.parent.mkdir(exist_ok=True)
    served.write_bytes(data)
    return served.as_uri(), data


def test_url_is_downloaded_once_into_the_cache_and_found_offline(tmp_path, cache):
    url, data = _published(tmp_path, "tiny")
    first = resolve_checkpoint(url, "pose.checkpoint")
    sha256 = hashlib.sha256(data).hexdigest()
    assert first.path.parent == cache == cache_dir()
    assert first.path.name == f"{sha256[:16]}-{url.rsplit('/', 1)[1]}"
    assert first.path.read_bytes() == data
    for served in (tmp_path / "server").iterdir():  # the "network" goes away
        served.unlink()
    again = resolve_checkpoint(url, "pose.checkpoint")
    assert again == first
    assert torch.equal(load_state_dict(again.path)["w"], torch.arange(5.0))


def test_a_download_that_does_not_match_the_hash_in_its_name_is_rejected(tmp_path, cache):
    url, _ = _published(tmp_path, "tiny")
    forged = url.replace(url.rsplit("-", 1)[1][:8], "deadbeef")
    (tmp_path / "server" / forged.rsplit("/", 1)[1]).write_bytes((tmp_path / "scratch.pth").read_bytes())
    with pytest.raises(CheckpointError, match="does not start with deadbeef"):
        resolve_checkpoint(forged, "pose.checkpoint")
    assert not any(cache.iterdir())  # nothing half-written is left behind


def test_unreachable_url_says_what_to_do(cache):
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("http://127.0.0.1:9/rtmpose-x-0123abcd_20230101.pth", "pose.checkpoint")
    message = str(err.value)
    assert message.startswith("pose.checkpoint: cannot download")
    assert str(cache) in message and "'random'" in message


def test_a_file_copied_into_the_cache_by_hand_is_used(tmp_path, cache):
    url, data = _published(tmp_path, "offline")
    cache.mkdir(parents=True)
    (cache / url.rsplit("/", 1)[1]).write_bytes(data)
    for served in (tmp_path / "server").iterdir():
        served.unlink()
    found = resolve_checkpoint(url, "pose.checkpoint")
    assert found.path == cache / url.rsplit("/", 1)[1]


class _Served:
    """A local HTTP server of one file that counts its GETs and fails the first `fail` of them (500)."""

    def __init__(self, data: bytes, fail: int = 0):
        import http.server
        import threading

        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                served.gets += 1
                if served.gets <= fail:
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.gets = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()


def _resolve_in_a_process(url: str, cache: str) -> str:
    os.environ[CACHE_ENV] = cache
    return str(resolve_checkpoint(url, "rgb.feature_sets.aware.checkpoint").path)


def test_array_tasks_that_start_together_fetch_a_checkpoint_once(tmp_path, cache):
    """Four tasks resolve one URL at once: one fetches (over HTTP, through pooch) while the others wait on
    the lock file, then all read the same cached file."""
    import multiprocessing

    _, data = _published(tmp_path, "shared")
    name = next((tmp_path / "server").iterdir()).name
    served = _Served(data)
    try:
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            paths = pool.starmap(_resolve_in_a_process, [(served.url(name), str(cache))] * 4)
    finally:
        served.close()
    assert served.gets == 1 and len(set(paths)) == 1 and Path(paths[0]).read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == sorted([Path(paths[0]).name, Path(paths[0]).name + ".json"])


def test_a_failed_transfer_is_retried(tmp_path, cache):
    _, data = _published(tmp_path, "flaky")
    name = next((tmp_path / "server").iterdir()).name
    served = _Served(data, fail=2)
    try:
        fetched = resolve_checkpoint(served.url(name), "pose.checkpoint")
    finally:
        served.close()
    assert served.gets == 3 and fetched.path.read_bytes() == data
