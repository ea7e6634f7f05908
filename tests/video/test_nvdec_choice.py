"""runtime.decoder on a machine without a GPU: auto falls back to the CPU saying why once, nvdec stops the
run with a message naming the key, and which clips NVDEC would leave to the CPU decoder (real files)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from pipeline.config import ParamError, load_params
from pipeline.video import nvdec
from pipeline.video.nvdec import DecoderUnavailable, choose_decoder, clip_unsupported, nvdec_frames, open_nvdec
from tests_support import needs_no_gpu



@pytest.fixture(autouse=True)
def fresh_log(monkeypatch):
    monkeypatch.setattr(nvdec, "_said", set())


@needs_no_gpu
def test_auto_falls_back_to_the_cpu_with_one_line(caplog):
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert choose_decoder("auto", "cpu") == "cpu"
        assert choose_decoder("auto", "cuda") == "cpu"
        assert open_nvdec("auto", "cpu") is None
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["runtime.decoder auto: decoding on the CPU (no CUDA device)"]


@needs_no_gpu
def test_nvdec_without_a_gpu_is_a_clear_param_error():
    with pytest.raises(DecoderUnavailable, match=r"runtime.decoder: nvdec cannot run on device 'cuda': no CUDA "
                                                 r"device\. Use runtime.decoder: auto") as err:
        open_nvdec("nvdec", "cuda")
    assert isinstance(err.value, ParamError)


def test_cpu_never_looks_for_a_gpu(caplog):
    with caplog.at_level(logging.WARNING):
        assert choose_decoder("cpu", "cuda") == "cpu"
    assert not caplog.records
    assert nvdec_frames(None, "any.mp4", np.arange(3)) is None  # no reader: the CPU path, unchanged


def test_runtime_decoder_is_validated(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("runtime:\n  decoder: gpu\n")
    with pytest.raises(ParamError, match=r"runtime.decoder: 'gpu' is not one of \['auto', 'cpu', 'nvdec'\]"):
        load_params(path)


def test_clips_nvdec_leaves_to_the_cpu(testdata, tmp_path):
    videos = testdata / "videos"
    assert clip_unsupported(videos / "slp-pose__test_video.mp4") is None          # H.264
    assert clip_unsupported(videos / "mmaction2__test.avi") == (
        "codec mpeg4 is not one NVDEC decodes (h264, hevc, vp9, av1)")
    assert clip_unsupported(tmp_path) == "a frame folder"


@needs_no_gpu
def test_the_driver_check_resolves_as_local_workers_will_and_leaves_remote_ones_to_decide(caplog):
    from pipeline.video.nvdec import run_decoder

    assert run_decoder("cpu", "cuda", "synchronous") == "cpu"
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert run_decoder("auto", "auto", "local") == "cpu"
    assert [r.getMessage() for r in caplog.records] == ["runtime.decoder auto: decoding on the CPU (no CUDA device)"]
    with pytest.raises(DecoderUnavailable, match="nvdec cannot run on device 'cpu': no CUDA device"):
        run_decoder("nvdec", "auto", "synchronous")
    assert run_decoder("nvdec", "auto", "tcp://gpu-node:8786") == "nvdec"  # its workers check when they open


def test_frame_sets_decode_the_union_once_and_give_each_set_its_frames(testdata):
    from pipeline.video.decode import read_frames
    from pipeline.video.nvdec import nvdec_frame_sets

    path = testdata / "videos" / "slp-pose__test_video.mp4"
    reads = []

    class CpuReader:  # NvdecReader's contract on the CPU (PyNvVideoCodec needs a GPU)
        def read(self, path, indices):
            reads.append(list(indices))
            return torch.from_numpy(read_frames(path, indices))

    pose, rgb = np.array([0, 10, 20, 30]), np.array([5, 10, 11, 12, 30])
    got = nvdec_frame_sets(CpuReader(), path, [pose, rgb])
    assert reads == [[0, 5, 10, 11, 12, 20, 30]]
    for frames, indices in zip(got, (pose, rgb)):
        np.testing.assert_array_equal(frames.numpy(), read_frames(path, indices))
    assert nvdec_frame_sets(None, path, [pose]) is None
    assert nvdec_frame_sets(CpuReader(), testdata / "videos" / "mmaction2__test.avi", [pose]) is None  # MPEG-4
