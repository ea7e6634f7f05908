"""runtime.decoder on a machine without a GPU: auto falls back to the CPU saying why once, nvdec stops the
run with a message naming the key, and which clips NVDEC leaves to the CPU decoder, decided from probe
facts alone (those of the real files, and rows made up for each rule)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ParamError, load_params
from pipeline.runner.stage import ItemRequest
from pipeline.video import nvdec
from pipeline.video.decode import open_source
from pipeline.video.nvdec import (
    AUTO_MEANS_CPU,
    DecoderUnavailable,
    OnCpu,
    choose_decoder,
    nvdec_declines,
    nvdec_frame_sets,
    open_nvdec,
)
from tests_support import TINY_PARAMS, needs_no_gpu, write_params


def _request(path: Path, row: dict) -> ItemRequest:
    return ItemRequest(path.name, "key", path, None, None, "content", row)


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch):
    monkeypatch.setattr(nvdec, "_said", set())


def test_auto_is_the_cpu_until_nvdec_is_measured_with_one_line(caplog, nvdec_stand_in):
    """Even where NVDEC could run (here the stand-in on the CPU), `auto` decodes on the CPU and says why."""
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert choose_decoder("auto", "cpu") == "cpu"
        assert choose_decoder("auto", "cuda") == "cpu"
        assert open_nvdec("auto", "cpu") is None
    assert [r.getMessage() for r in caplog.records] == [f"runtime.decoder auto: decoding on the CPU ({AUTO_MEANS_CPU})"]
    assert choose_decoder("nvdec", "cpu") == "nvdec"  # asked for by name, where it can run


def test_nvdec_items_are_keyed_apart_and_cpu_ones_keep_their_fingerprint(tmp_path):
    """Until the NVDEC-vs-CPU tolerance is measured on a GPU, the decoder that made an item is in its key:
    nvdec adds `decoder: nvdec` to pose's and rgb's fingerprints; cpu and auto leave them as they were."""
    from pipeline.config import load_params
    from pipeline.pose.stage import PoseStage
    from pipeline.probe.stage import ProbeStage
    from pipeline.rgb.stage import RgbStage

    write_params(tmp_path, TINY_PARAMS)

    def fingerprints(decoder: str) -> dict[str, tuple[str, dict]]:
        params = load_params(
            tmp_path / "params.yaml", {"runtime.decoder": decoder, "runtime.device": "cpu", "pose.checkpoint": "random"}
        )
        return {
            cls.name: (cls(params).fingerprint("up").digest, cls(params).fingerprint("up").params)
            for cls in (PoseStage, RgbStage, ProbeStage)
        }

    cpu, auto, nvdec = fingerprints("cpu"), fingerprints("auto"), fingerprints("nvdec")
    assert cpu == auto
    for stage in ("pose", "rgb"):
        assert nvdec[stage][0] != cpu[stage][0] and nvdec[stage][1] == {**cpu[stage][1], "decoder": "nvdec"}
        assert "decoder" not in cpu[stage][1]
    assert nvdec["probe"] == cpu["probe"]  # probe decodes on the CPU whatever runtime.decoder says


@needs_no_gpu
def test_nvdec_without_a_gpu_is_a_clear_param_error():
    with pytest.raises(
        DecoderUnavailable,
        match=r"runtime.decoder: nvdec cannot run on device 'cuda': no CUDA "
        r"device\. Use runtime.decoder: cpu \(or auto\)",
    ) as err:
        open_nvdec("nvdec", "cuda")
    assert isinstance(err.value, ParamError)


def test_cpu_never_looks_for_a_gpu(caplog):
    with caplog.at_level(logging.WARNING):
        assert choose_decoder("cpu", "cuda") == "cpu"
    assert not caplog.records
    no_reader = nvdec_frame_sets(None, _request(Path("any.mp4"), {}), [np.arange(3)])
    assert no_reader == OnCpu() and no_reader.provenance == {}  # no reader: the CPU path, provenance unchanged


def test_runtime_decoder_is_validated(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("runtime:\n  decoder: gpu\n")
    with pytest.raises(ParamError, match=r"runtime.decoder: 'gpu' is not one of \['auto', 'cpu', 'nvdec'\]"):
        load_params(path)


H264_ROW = {
    "decoder": "decord",
    "codec": "h264",
    "profile": "High",
    "pix_fmt": "yuv420p",
    "chroma": "4:2:0",
    "bit_depth": 8,
    "rotation": 0,
}


def test_clips_nvdec_leaves_to_the_cpu_are_told_from_their_probe_facts(testdata, tmp_path):
    videos = testdata / "videos"
    facts = {
        name: open_source(videos / name).info.as_dict()
        for name in ("slp-pose__test_video.mp4", "mmpose__demo.mp4", "mmaction2__test.avi")
    }
    assert nvdec_declines(facts["slp-pose__test_video.mp4"]) is None  # H.264 High, yuvj420p
    assert nvdec_declines(facts["mmpose__demo.mp4"]) is None  # H.264 High, yuv420p
    assert nvdec_declines(facts["mmaction2__test.avi"]) == "codec mpeg4 is not one NVDEC takes here (h264, hevc, vp9)"
    import cv2

    (tmp_path / "frames").mkdir()  # JPEG: here cv2 cannot read a PNG once PyAV and decord are loaded (zlib clash)
    cv2.imwrite(str(tmp_path / "frames" / "0001.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert nvdec_declines(open_source(tmp_path / "frames").info.as_dict()) == "a frame folder"


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"decoder": "pillow", "codec": "gif"}, "an animated image (gif)"),
        ({"rotation": 90}, "a rotated container (NVDEC ignores the display matrix)"),
        ({"codec": "av1", "profile": "Main"}, "codec av1 is not one NVDEC takes here (h264, hevc, vp9)"),
        ({"codec": ""}, "codec unknown is not one NVDEC takes here (h264, hevc, vp9)"),
        (
            {"profile": "High 4:2:2", "pix_fmt": "yuv422p", "chroma": "4:2:2"},
            "h264 (yuv422p: 4:2:2, 8-bit): NVDEC takes 8-bit 4:2:0 only",
        ),
        (
            {"profile": "High 4:4:4 Predictive", "pix_fmt": "yuv444p", "chroma": "4:4:4"},
            "h264 (yuv444p: 4:4:4, 8-bit): NVDEC takes 8-bit 4:2:0 only",
        ),
        (
            {"profile": "High 10", "pix_fmt": "yuv420p10le", "bit_depth": 10},
            "h264 (yuv420p10le: 4:2:0, 10-bit): NVDEC takes 8-bit 4:2:0 only",
        ),
        (
            {"codec": "hevc", "profile": "Main 10", "pix_fmt": "yuv420p10le", "bit_depth": 10},
            "hevc (yuv420p10le: 4:2:0, 10-bit): NVDEC takes 8-bit 4:2:0 only",
        ),
        ({"pix_fmt": "gray", "chroma": "4:0:0"}, "h264 (gray: 4:0:0, 8-bit): NVDEC takes 8-bit 4:2:0 only"),
        ({"pix_fmt": "", "chroma": "", "bit_depth": 0}, "h264 (pixel format unknown): NVDEC takes 8-bit 4:2:0 only"),
        (
            {"profile": "Extended"},
            "h264 profile Extended is not one NVDEC takes here (Baseline, Constrained Baseline, Main, High)",
        ),
        ({"codec": "hevc", "profile": "Rext"}, "hevc profile Rext is not one NVDEC takes here (Main)"),
        ({"codec": "vp9", "profile": ""}, "vp9 profile unknown is not one NVDEC takes here (Profile 0)"),
    ],
)
def test_each_rule_of_the_choice(change, reason):
    assert nvdec_declines({**H264_ROW, **change}) == reason


@pytest.mark.parametrize(
    "row",
    [
        H264_ROW,
        {**H264_ROW, "profile": "Constrained Baseline", "pix_fmt": "yuvj420p"},
        {**H264_ROW, "codec": "hevc", "profile": "Main"},
        {**H264_ROW, "codec": "vp9", "profile": "Profile 0"},
    ],
)
def test_nvdec_takes_8_bit_4_2_0_of_the_profiles_it_decodes(row):
    assert nvdec_declines(row) is None


def test_a_row_of_an_older_probe_view_is_left_to_the_cpu():
    old = {"decoder": "decord", "fps": 25.0, "width": 320, "height": 240}  # probe VERSION 3 had no format columns
    assert nvdec_declines(old) == (
        "the probe view has no codec, profile, pix_fmt, chroma, bit_depth, rotation "
        "column(s) (written before probe VERSION 4), so the stream format is unknown; "
        "rerun the probe stage to let NVDEC take these clips"
    )


@needs_no_gpu
def test_the_driver_check_resolves_as_local_workers_will_and_leaves_remote_ones_to_decide(caplog):
    from pipeline.video.nvdec import run_decoder

    assert run_decoder("cpu", "cuda", "synchronous") == "cpu"
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert run_decoder("auto", "auto", "local") == "cpu"
        assert run_decoder("auto", "auto", "tcp://gpu-node:8786") == "cpu"
    assert [r.getMessage() for r in caplog.records] == [f"runtime.decoder auto: decoding on the CPU ({AUTO_MEANS_CPU})"]
    with pytest.raises(DecoderUnavailable, match="nvdec cannot run on device 'cpu': no CUDA device"):
        run_decoder("nvdec", "auto", "synchronous")
    assert run_decoder("nvdec", "auto", "tcp://gpu-node:8786") == "nvdec"  # its workers check when they open


def test_frame_sets_decode_the_union_once_and_give_each_set_its_frames(testdata, nvdec_stand_in):
    from pipeline.video.decode import read_frames

    path = testdata / "videos" / "slp-pose__test_video.mp4"
    reader = open_nvdec("nvdec", "cpu")  # the real NvdecReader over the stand-in PyNvVideoCodec
    pose, rgb = np.array([0, 10, 20, 30]), np.array([5, 10, 11, 12, 30])
    got = nvdec_frame_sets(reader, _request(path, H264_ROW), [pose, rgb])
    assert nvdec_stand_in.CALLS == [(path.name, [0, 5, 10, 11, 12, 20, 30])]
    for frames, indices in zip(got, (pose, rgb)):
        np.testing.assert_array_equal(frames.numpy(), read_frames(path, indices))
    mpeg4 = testdata / "videos" / "mmaction2__test.avi"
    assert nvdec_frame_sets(reader, _request(mpeg4, {**H264_ROW, "codec": "mpeg4"}), [pose]) == OnCpu()
    assert nvdec_stand_in.OPENED == [path.name]  # the MPEG-4 clip was declined from its row, never opened
