"""NVDEC errors are retried on the CPU decoder, never stored as the clip's failure, and clips NVDEC cannot
decode go to the CPU before any decoding, decided from their probe row.

Run on the CPU through the stand-in PyNvVideoCodec (tests/stand_ins, the `nvdec_stand_in` fixture), which
misbehaves per clip as NVDEC does on a GPU (out of memory, no free session, a driver error, a short read):
the real NvdecReader's reading, reordering, deduplication and short-read check run, and the stages' real
fallback path in each caller (pose alone, rgb alone, pose + rgb sharing a decode, rgb-only clips of a
shared run). A clip the CPU decoder decodes gives exactly the CPU path's arrays.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.cli import main
from pipeline.runner.plan import read_view
from pipeline.runner.stage import ItemRequest
from pipeline.store.index import StageIndex
from pipeline.store.layout import StageDir
from pipeline.store.reader import StageReader
from pipeline.video.decode import read_frames
from pipeline.video.nvdec import STREAM_FORMAT_COLUMNS, NvdecFailed, NvdecReader, OnCpu, nvdec_frame_sets
from tests_support import TINY_PARAMS, view_rows, write_csv_manifest, write_params

NVDEC = ("--set", "runtime.decoder=nvdec")  # auto means cpu: the NVDEC path is asked for by name
CLIP = "slp-pose__test_video.mp4"  # H.264 High, 540x720, 58 frames
ERRORS = {  # the stand-in's errors as NvdecFailed words them: what items record as nvdec_fallback
    "out_of_memory": "RuntimeError: cuvidCreateDecoder returned error 2 (CUDA_ERROR_OUT_OF_MEMORY): out of memory",
    "session_limit": "RuntimeError: cuvidCreateDecoder returned error 999 (CUDA_ERROR_UNKNOWN): no free decode session",
    "driver_error": "RuntimeError: cuvidDecodePicture returned error 700 (CUDA_ERROR_ILLEGAL_ADDRESS): driver error",
}
POSE = {
    "model": "rtmpose-m_8xb64-270e_coco-wholebody-256x192",
    "checkpoint": "random",
    "frames": "uniform",
    "frames_value": 2,
    "flip_test": False,
    "batch_size": 4,
    "chunk_frames": 2,
}
RGB = {"size": 32, "resize": 40, "window": 4, "num_windows": 3, "batch_size": 6}
STAGES = ("pose", "rgb")


def _request(path: Path, row: dict | None = None) -> ItemRequest:
    row = row or {
        "decoder": "decord",
        "codec": "h264",
        "profile": "High",
        "pix_fmt": "yuv420p",
        "chroma": "4:2:0",
        "bit_depth": 8,
        "rotation": 0,
    }
    return ItemRequest(path.name, "key", path, None, None, "content", row)


def _items(project: Path, stage: str) -> dict[str, tuple[dict, dict]]:
    """sample_id -> (arrays, provenance) of the stage's stored items, as its view names them."""
    _, fingerprints = read_view(project / "manifests", stage)
    out = {}
    with StageReader(StageDir(project / "cache", stage, fingerprints[stage])) as reader:
        for sample_id, row in view_rows(stage).items():
            assert row[f"{stage}_status"] == "ok", row
            out[sample_id] = (reader.read(row[f"{stage}_key"]), reader.row(row[f"{stage}_key"]).provenance)
    return out


def _assert_cpu_decoded(got: dict, reference: dict, fallback: dict[str, str]) -> None:
    """Items of clips the CPU decoder decoded (sample id -> NVDEC's failure, None where NVDEC never tried)
    are the CPU path's arrays byte for byte, and say why in their provenance; the others are NVDEC's."""
    assert got.keys() == reference.keys()
    for sample_id, (arrays, provenance) in got.items():
        expected, expected_provenance = reference[sample_id]
        if sample_id not in fallback:
            assert provenance == {**expected_provenance, "decoder": "nvdec"}, sample_id
            continue
        said = {} if fallback[sample_id] is None else {"decoder": "cpu", "nvdec_fallback": fallback[sample_id]}
        assert provenance == {**expected_provenance, **said}, sample_id
        assert arrays.keys() == expected.keys()
        for name, array in arrays.items():
            assert array.dtype == expected[name].dtype
            np.testing.assert_array_equal(array, expected[name], err_msg=f"{sample_id} {name}")


# -- NvdecReader over the stand-in ---------------------------------------------------------------------
def test_the_reader_decodes_each_frame_once_and_gives_them_in_the_order_asked(testdata, nvdec_stand_in, monkeypatch):
    def no_cuda(*args, **kwargs):
        raise AssertionError("a torch.cuda call on device cpu")

    for name in ("current_device", "synchronize", "device"):
        monkeypatch.setattr(torch.cuda, name, no_cuda)
    path = testdata / "videos" / CLIP
    reader = NvdecReader("cpu")
    indices = np.array([20, 3, 20, 57, 3, 7])
    frames = reader.read(path, indices)
    assert nvdec_stand_in.CALLS == [(CLIP, [3, 7, 20, 57])]  # sorted, each frame asked for once
    assert frames.dtype == torch.uint8 and frames.device.type == "cpu" and frames.shape == (6, 720, 540, 3)
    np.testing.assert_array_equal(frames.numpy(), read_frames(path, indices))  # the CPU decoder's frames, reordered
    assert torch.equal(frames[0], frames[2]) and torch.equal(frames[1], frames[4])
    assert not torch.equal(frames[0], frames[1])
    assert reader.read(path, np.array([], dtype=np.int64)).shape == (0, 720, 540, 3)
    assert len(nvdec_stand_in.CALLS) == 1  # nothing asked of the decoder for no frames


@pytest.mark.parametrize("failure", sorted(ERRORS))
def test_a_library_error_is_an_nvdec_failure_naming_it(testdata, nvdec_stand_in, failure):
    nvdec_stand_in.FAIL[CLIP] = failure
    with pytest.raises(NvdecFailed) as err:
        NvdecReader("cpu").read(testdata / "videos" / CLIP, np.array([1, 2]))
    assert str(err.value) == ERRORS[failure] and err.value.kind == "RuntimeError"


def test_fewer_frames_than_asked_is_a_short_read(testdata, nvdec_stand_in):
    reader, path = NvdecReader("cpu"), testdata / "videos" / CLIP
    with pytest.raises(
        NvdecFailed,
        match=r"^short read: NVDEC delivered 1 of 2 frames \(the container announces "
        r"58\)$",
    ) as err:
        reader.read(path, np.array([57, 58]))  # past the end: SimpleDecoder drops it
    assert err.value.kind == "short read"
    nvdec_stand_in.FAIL[CLIP] = "short"
    with pytest.raises(NvdecFailed, match=r"^short read: NVDEC delivered 2 of 3 frames"):
        reader.read(path, np.array([4, 2, 9]))


def test_a_clip_nvdec_fails_on_goes_to_the_cpu_saying_why_once_per_kind(testdata, nvdec_stand_in, caplog):
    reader, path = NvdecReader("cpu"), testdata / "videos" / CLIP
    nvdec_stand_in.FAIL[CLIP] = "driver_error"
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        first = nvdec_frame_sets(reader, _request(path), [np.arange(4)])
        again = nvdec_frame_sets(reader, _request(path), [np.arange(2)])
    assert first == again == OnCpu(ERRORS["driver_error"])
    assert first.provenance == {"decoder": "cpu", "nvdec_fallback": ERRORS["driver_error"]}
    assert [r.getMessage() for r in caplog.records] == [
        f"runtime.decoder: NVDEC failed on {path} ({ERRORS['driver_error']}): such clips are decoded on the CPU, "
        "their items say so (provenance nvdec_fallback)"
    ]


# -- every caller, on the tiny sample project ------------------------------------------------------------
def _params(project: Path) -> None:
    params = copy.deepcopy(TINY_PARAMS)
    params["runtime"].update(threads_per_worker=1, device="cpu")  # device cpu: the stand-in's frames are host frames
    params["pose"], params["rgb"] = dict(POSE), dict(RGB)
    write_params(project, params)


def test_nvdec_errors_are_retried_on_the_cpu_in_every_caller(project, tmp_path, chdir, nvdec_stand_in):
    _params(project)
    reference, separate, together = tmp_path / "reference", tmp_path / "separate", tmp_path / "together"
    for copy_ in (reference, separate, together):
        shutil.copytree(project, copy_, symlinks=True)
    chdir(reference)
    assert main(["run", "pose", "rgb", "--no-progress", "--set", "runtime.decoder=cpu"]) == 0
    cpu = {stage: _items(reference, stage) for stage in STAGES}
    assert nvdec_stand_in.OPENED == []

    ids = sorted(cpu["pose"])
    failures = {ids[0]: "out_of_memory", ids[1]: "session_limit", ids[2]: "driver_error", ids[3]: "short"}
    nvdec_stand_in.FAIL.update({f"{sample_id}.mp4": failure for sample_id, failure in failures.items()})

    def check(project: Path, stages: tuple[str, ...]) -> None:
        assert sorted(nvdec_stand_in.OPENED) == sorted(f"{i}.mp4" for i in ids)  # NVDEC tried each clip once
        nvdec_stand_in.OPENED.clear()
        for stage in stages:
            got = _items(project, stage)  # every clip stored: max_failures 0, and every view row ok
            said = {i: got[i][1].get("nvdec_fallback", "") for i in failures}
            assert said[ids[3]].startswith("short read: NVDEC delivered "), said
            _assert_cpu_decoded(
                got, cpu[stage], {**{i: ERRORS[f] for i, f in failures.items() if f in ERRORS}, ids[3]: said[ids[3]]}
            )

    chdir(separate)
    assert main(["run", "pose", "--no-progress", *NVDEC]) == 0  # pose alone (pose/batching.py)
    check(separate, ("pose",))
    assert main(["run", "pose", "rgb", "--no-progress", *NVDEC]) == 0  # pose stored: rgb-only clips of a shared run
    check(separate, ("rgb",))
    chdir(project)
    assert main(["run", "rgb", "--no-progress", *NVDEC]) == 0  # rgb alone (rgb/stage.py)
    check(project, ("rgb",))
    chdir(together)
    assert (
        main(["run", "pose", "rgb", "--no-progress", *NVDEC]) == 0
    )  # one decode for pose and rgb (extract/shared_decode.py)
    check(together, STAGES)


def test_a_short_stream_fails_only_when_the_cpu_decoder_confirms_it(project, nvdec_stand_in, capsys):
    _params(project)
    # Probe saw a whole clip; make its view place the clip past the video's end: NVDEC delivers none of its
    # frames (a short read), the CPU decoder retries and cannot either, so both items fail as `truncated`.
    table = pq.read_table("manifests/probe.parquet")
    rows = table.to_pylist()
    short = rows[0]["sample_id"]
    rows[0]["first_frame"] += 10_000
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), "manifests/probe.parquet")
    assert main(["run", "pose", "rgb", "--no-progress", *NVDEC, "--max-failures", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{short}.mp4" in nvdec_stand_in.OPENED
    for stage in STAGES:
        assert f"{stage}: 12 items: 11 computed, 0 reused, 1 failed (truncated: 1)" in out
        row = view_rows(stage)[short]
        assert (row[f"{stage}_status"], row[f"{stage}_reason"]) == ("failed", "truncated")
        _, fingerprints = read_view(Path("manifests"), stage)
        failure = StageIndex.load(StageDir(Path("cache"), stage, fingerprints[stage])).failure_for(
            row[f"{stage}_key"], short
        )
        assert "could not be decoded" in failure.error  # the CPU decoder's verdict
        assert failure.provenance["decoder"] == "cpu"
        assert failure.provenance["nvdec_fallback"].startswith("short read: NVDEC delivered 0 of ")


# -- formats NVDEC cannot decode, told from the probe row ---------------------------------------------------
def _encode_h264(path: Path, pix_fmt: str, frames: int = 6, width: int = 64, height: int = 48) -> Path:
    """A small libx264 clip in `pix_fmt` (noise frames, so every frame differs)."""
    import av

    rng = np.random.default_rng(width + frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for _ in range(frames):
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


UNSUPPORTED = {  # clip -> (profile, pix_fmt, chroma, bit depth) the probe records
    "h264_422.mp4": ("High 4:2:2", "yuv422p", "4:2:2", 8),
    "h264_444.mp4": ("High 4:4:4 Predictive", "yuv444p", "4:4:4", 8),
    "h264_10bit.mp4": ("High 10", "yuv420p10le", "4:2:0", 10),
}
TAKEN, TAKEN_FORMAT = "h264_420.mp4", ("Constrained Baseline", "yuv420p", "4:2:0", 8)  # libx264 ultrafast's profile


@pytest.fixture(scope="module")
def formats_template(tmp_path_factory) -> Path:
    """A project over H.264 clips in 4:2:0 (NVDEC takes it) and 4:2:2, 4:4:4 and 10-bit (it cannot),
    manifest and probe done."""
    import os

    project = tmp_path_factory.mktemp("nvdec_formats")
    (project / "data").mkdir()
    for name, (_, pix_fmt, _, _) in {**UNSUPPORTED, TAKEN: TAKEN_FORMAT}.items():
        _encode_h264(project / "data" / name, pix_fmt)
    rows = [{"sample_id": name, "video_path": name, "text": name} for name in (*UNSUPPORTED, TAKEN)]
    write_csv_manifest(
        project, rows, root="data", extra_params={"runtime": {"device": "cpu"}, "pose": dict(POSE), "rgb": dict(RGB)}
    )
    old = os.getcwd()
    os.chdir(project)
    try:
        assert main(["manifest"]) == 0
        assert main(["run", "probe", "--no-progress"]) == 0
    finally:
        os.chdir(old)
    return project


def test_formats_nvdec_cannot_decode_never_reach_it(formats_template, tmp_path, chdir, nvdec_stand_in, caplog):
    reference = tmp_path / "reference"
    shutil.copytree(formats_template, reference)
    chdir(reference)
    assert main(["run", "pose", "rgb", "--no-progress", "--set", "runtime.decoder=cpu"]) == 0
    cpu = {stage: _items(reference, stage) for stage in STAGES}

    project = tmp_path / "project"
    shutil.copytree(formats_template, project)
    chdir(project)
    view = view_rows("probe")
    for name, (profile, pix_fmt, chroma, bit_depth) in {**UNSUPPORTED, TAKEN: TAKEN_FORMAT}.items():
        assert (
            view[name]["codec"],
            view[name]["profile"],
            view[name]["pix_fmt"],
            view[name]["chroma"],
            view[name]["bit_depth"],
            view[name]["rotation"],
        ) == ("h264", profile, pix_fmt, chroma, bit_depth, 0)
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert main(["run", "pose", "rgb", "--no-progress", *NVDEC]) == 0
    assert nvdec_stand_in.OPENED == [TAKEN]  # the others were declined from their probe rows, never opened
    for stage in STAGES:
        _assert_cpu_decoded(_items(project, stage), cpu[stage], {name: None for name in UNSUPPORTED})
    said = sorted(r.getMessage() for r in caplog.records)
    assert said == sorted(
        f"runtime.decoder: h264 ({pix_fmt}: {chroma}, {bits}-bit): NVDEC takes 8-bit 4:2:0 only: "
        f"such clips are decoded on the CPU (first: {Path('data', name)})"
        for name, (_, pix_fmt, chroma, bits) in UNSUPPORTED.items()
    )


def test_an_older_probe_view_sends_every_clip_to_the_cpu_with_one_line(
    formats_template, tmp_path, chdir, nvdec_stand_in, caplog
):
    reference = tmp_path / "reference"
    shutil.copytree(formats_template, reference)
    chdir(reference)
    assert main(["run", "rgb", "--no-progress", "--set", "runtime.decoder=cpu"]) == 0
    cpu = _items(reference, "rgb")

    project = tmp_path / "project"
    shutil.copytree(formats_template, project)
    chdir(project)
    table = pq.read_table("manifests/probe.parquet")  # as probe VERSION 3 wrote it: no stream-format columns
    pq.write_table(table.drop_columns([c for c in STREAM_FORMAT_COLUMNS if c != "decoder"]), "manifests/probe.parquet")
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert main(["run", "rgb", "--no-progress", *NVDEC]) == 0
    assert nvdec_stand_in.OPENED == []
    _assert_cpu_decoded(_items(project, "rgb"), cpu, {name: None for name in cpu})
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith(
        "runtime.decoder: the probe view has no codec, profile, pix_fmt, chroma, bit_depth, rotation column(s) "
        "(written before probe VERSION 4), so the stream format is unknown; rerun the probe stage to let NVDEC take "
        "these clips: such clips are decoded on the CPU (first: data/"
    ), said
