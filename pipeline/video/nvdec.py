"""GPU decoding with NVDEC (PyNvVideoCodec): a clip's frames straight into a uint8 CUDA tensor, and the
`runtime.decoder` choice (auto | cpu | nvdec).

Why PyNvVideoCodec (the comparison with DALI and torchcodec is in docs/gpu.md): a 27 MB wheel on PyPI
that brings its own demuxer (no system FFmpeg), needs only the NVIDIA driver, decodes frames by index
and hands them over as CUDA memory that torch takes without a copy to the host.

The CPU decoders (pipeline/video/decode.py, in the child process of service.py) stay the reference, and
a clip goes there in two ways (`nvdec_frame_sets`, the one place of that rule):
- declined before any decode, from its probe row (`nvdec_declines`): a format NVDEC lacks on the GPUs
  this pipeline targets, a rotated container (NVDEC ignores the display matrix), a frame folder, an
  animated image. The probe gathered those facts in its decoder child, under its timeout, so the stage
  process never opens a file to decide;
- retried after NVDEC failed on it (NvdecFailed: PyNvVideoCodec raised, e.g. out of memory, no free
  decode session, a driver error; or it delivered fewer frames than asked). Such an error says little
  about the clip, so it is never stored as the clip's failure: the CPU decoder decodes the clip and its
  verdict is stored, the item recording `nvdec_fallback` in its provenance (docs/cache-format.md).
NVDEC runs in the stage's own process: it is not decord, whose deadlocks on hostile files are what the
child process guards against, and frames must stay on this process's GPU. Colour conversion is NVDEC's
own (YUV -> RGB on the GPU), so pixels differ from FFmpeg's by a few levels; benchmarks/gpu.sh measures
that against the documented tolerance.

Stages use `open_nvdec(runtime.decoder, device)` once per worker (None = decode on the CPU as before)
and `nvdec_frame_sets(reader, request, sets)` per clip. The driver calls `run_decoder` before
planning, so `nvdec` where it cannot run stops the run before any work.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from pipeline.config import ParamError
from pipeline.models.device import planned_device

if TYPE_CHECKING:
    import torch

    from pipeline.runner.stage import ItemRequest

log = logging.getLogger(__name__)

DECODERS = ("auto", "cpu", "nvdec")
# What NVDEC takes, per codec FFmpeg names: the profiles of the "Turing / GA100 / Hopper" column of
# NVIDIA's NVDEC capability table (Video Codec SDK 13.0, NVDEC Application Note, "NVDEC Hardware
# Capabilities"), the oldest column holding the GPUs this pipeline targets (A100, H100, H200; Ampere
# GA10x, Ada and Blackwell decode a superset). AV1 is not in that column; MPEG-2, MPEG-4 Part 2, VC-1 and
# VP8 are, but stay on the CPU decoder by choice (rare in sign-language corpora, and NVDEC's pixels have
# been checked against the CPU decoder's for H.264 only: benchmarks/gpu.sh).
NVDEC_PROFILES = {
    "h264": ("Baseline", "Constrained Baseline", "Main", "High"),
    "hevc": ("Main",),
    "vp9": ("Profile 0",),
}
# ... and 8-bit 4:2:0 only, whatever the profile allows (H.264 High also codes 4:0:0): NvdecReader hands
# over uint8 RGB converted from NVDEC's 8-bit 4:2:0 surface. HEVC Main 10 and 4:4:4, which that column
# decodes, would arrive as 16-bit or 4:4:4 surfaces, a conversion not checked here, so they go to the CPU.
NVDEC_LAYOUT = ("4:2:0", 8)  # (chroma subsampling, bit depth) of the probe view
# The probe view columns the choice reads (probe VERSION 4 writes them; pipeline/video/decode.py VideoInfo).
STREAM_FORMAT_COLUMNS = ("decoder", "codec", "profile", "pix_fmt", "chroma", "bit_depth", "rotation")
NVDEC_DECODED: Mapping[str, str] = MappingProxyType({"decoder": "nvdec"})  # provenance of items from NVDEC frames
INSTALL_HINT = "pip install 'seds-pipeline[nvdec]' (PyNvVideoCodec)"
# "1": NVDEC may be chosen on device cpu, frames in host memory. Only for a stand-in PyNvVideoCodec (the
# tests' tests/stand_ins), so CI without a GPU runs NvdecReader and the stages' NVDEC path for real.
NVDEC_ON_CPU = "SEDS_NVDEC_ON_CPU"

_said: set[str] = set()  # each fallback reason is logged once per process


class DecoderUnavailable(ParamError):
    """runtime.decoder: nvdec was asked for where it cannot run (stops the run before any item)."""


def _say_once(message: str, key: str | None = None) -> None:
    key = message if key is None else key
    if key not in _said:
        _said.add(key)
        log.warning(message)


def nvdec_missing(device: str) -> str | None:
    """Why NVDEC cannot run on `device` ('cpu', 'cuda', 'cuda:N'), or None when it can (on 'cpu' only with
    SEDS_NVDEC_ON_CPU=1, for a stand-in PyNvVideoCodec)."""
    import torch

    kind = torch.device(device).type
    stand_in = kind == "cpu" and os.environ.get(NVDEC_ON_CPU) == "1"
    if not stand_in and (kind != "cuda" or not torch.cuda.is_available()):
        return "no CUDA device"
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return f"PyNvVideoCodec is not installed ({INSTALL_HINT})"
    except Exception as err:  # it raises RuntimeError when the driver has no NVDEC/NVENC libraries
        return f"PyNvVideoCodec does not load: {str(err).splitlines()[0]}"
    return None


AUTO_MEANS_CPU = (
    "auto means cpu until NVDEC's pixels are measured against the CPU decoder's on a GPU "
    "(docs/gpu.md); runtime.decoder: nvdec decodes on the GPU under a fingerprint of its own"
)


def choose_decoder(choice: str, device: str) -> str:
    """'nvdec' or 'cpu' for runtime.decoder `choice` on `device`. `auto` is the CPU, with one log line
    saying why: how far NVDEC's frames are from the CPU decoder's has not been measured on a GPU yet, so
    it is used only when asked for (and then its items are keyed apart: Stage.fingerprint). `nvdec`
    where it cannot run raises DecoderUnavailable naming the reason."""
    if choice not in DECODERS:
        raise ParamError(f"runtime.decoder: {choice!r} is not one of {list(DECODERS)}")
    if choice == "auto":
        _say_once(f"runtime.decoder auto: decoding on the CPU ({AUTO_MEANS_CPU})")
        return "cpu"
    if choice == "cpu":
        return "cpu"
    reason = nvdec_missing(device)
    if reason is not None:
        raise DecoderUnavailable(
            f"runtime.decoder: nvdec cannot run on device {device!r}: {reason}. Use runtime.decoder: cpu (or auto)."
        )
    return "nvdec"


def nvdec_declines(row: Mapping[str, Any]) -> str | None:
    """Why NVDEC should not decode this clip (the CPU decoder then does), or None. Decided from the clip's
    probe row alone: the probe read these facts in its decoder child, under its timeout, and nothing here
    may open a file outside one. A row of an older probe view, without the columns, is left to the CPU."""
    missing = [column for column in STREAM_FORMAT_COLUMNS if column not in row]
    if missing:
        return (
            f"the probe view has no {', '.join(missing)} column(s) (written before probe VERSION 4), so the "
            "stream format is unknown; rerun the probe stage to let NVDEC take these clips"
        )
    codec = row["codec"] or "unknown"
    if row["decoder"] == "frames":
        return "a frame folder"
    if row["decoder"] == "pillow":
        return f"an animated image ({codec})"
    if row["rotation"]:
        return "a rotated container (NVDEC ignores the display matrix)"
    if codec not in NVDEC_PROFILES:
        return f"codec {codec} is not one NVDEC takes here ({', '.join(NVDEC_PROFILES)})"
    if (row["chroma"], row["bit_depth"]) != NVDEC_LAYOUT:
        found = (
            f"{row['pix_fmt']}: {row['chroma'] or 'chroma unknown'}, {row['bit_depth']}-bit"
            if row["pix_fmt"]
            else "pixel format unknown"
        )
        return f"{codec} ({found}): NVDEC takes 8-bit 4:2:0 only"
    if row["profile"] not in NVDEC_PROFILES[codec]:
        return (
            f"{codec} profile {row['profile'] or 'unknown'} is not one NVDEC takes here "
            f"({', '.join(NVDEC_PROFILES[codec])})"
        )
    return None


class NvdecFailed(Exception):
    """NVDEC could not deliver a clip's frames: PyNvVideoCodec raised (out of memory, no free decode
    session, a driver error, a stream it rejects), or it delivered fewer frames than asked. `kind` is the
    exception's type name, or "short read". Never a stored failure: the clip goes to the CPU decoder."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class NvdecReader:
    """Frames of one clip at a time from PyNvVideoCodec's SimpleDecoder, as RGB uint8 (T, H, W, 3) on
    `device`: a CUDA device, or the CPU for a stand-in PyNvVideoCodec (nvdec_missing), where frames come
    in host memory and no torch.cuda call is made."""

    def __init__(self, device: str):
        import PyNvVideoCodec as nvc
        import torch

        self.nvc = nvc
        self.device = torch.device(device)
        self.on_gpu = self.device.type == "cuda"
        self.gpu = 0  # SimpleDecoder's gpu_id: the device's GPU (ignored where frames come to the host)
        if self.on_gpu:
            self.gpu = self.device.index if self.device.index is not None else torch.cuda.current_device()

    def read(self, path: Path, indices: np.ndarray) -> "torch.Tensor":
        """Frames at `indices` (video frame numbers, any order, repeats allowed), each decoded once.
        NvdecFailed when NVDEC cannot deliver them all (see NvdecFailed)."""
        import torch

        indices = np.asarray(indices, dtype=np.int64)
        wanted = np.unique(indices)
        try:
            decoder = self.nvc.SimpleDecoder(
                str(path),
                gpu_id=self.gpu,
                use_device_memory=self.on_gpu,
                output_color_type=self.nvc.OutputColorType.RGB,
            )
            meta = decoder.get_stream_metadata()
            # SimpleDecoder drops indices past the container's frame count with a warning: count them here.
            frames = decoder.get_batch_frames_by_index(wanted.tolist()) if len(wanted) else []
            if len(frames) != len(wanted):
                raise NvdecFailed(
                    "short read",
                    f"NVDEC delivered {len(frames)} of {len(wanted)} frames (the container announces {len(decoder)})",
                )
            stack = self._stack(frames, meta.height, meta.width)
        except NvdecFailed:
            raise
        except Exception as err:  # whatever PyNvVideoCodec (or torch taking its frames) raises: the CPU decoder retries
            lines = str(err).strip().splitlines()
            raise NvdecFailed(type(err).__name__, lines[0] if lines else "(no message)") from err
        return stack[torch.from_numpy(np.searchsorted(wanted, indices)).to(stack.device)]

    def _stack(self, frames: list, height: int, width: int) -> "torch.Tensor":
        """The decoded frames (DLPack exporters) as one (T, H, W, 3) tensor on the reader's device."""
        import torch

        def stacked() -> torch.Tensor:
            if not frames:
                return torch.zeros((0, height, width, 3), dtype=torch.uint8, device=self.device)
            return torch.stack([torch.from_dlpack(frame).reshape(height, width, 3) for frame in frames])

        if not self.on_gpu:
            return stacked()
        with torch.cuda.device(self.device):
            stack = stacked()
            torch.cuda.synchronize(self.device)  # the decoder's stream has written every frame we copied
        return stack


@dataclass(frozen=True)
class OnCpu:
    """A clip the CPU decoder (the DecodeService child) decodes. `fallback`: why NVDEC failed on it
    (NvdecFailed's text), None where NVDEC never tried (no reader, or the clip was declined)."""

    fallback: str | None = None

    @property
    def provenance(self) -> dict[str, str]:
        """The entries the clip's items (and failures) add to their provenance: none where NVDEC never tried
        (CPU items stay as they were), else the decoder that did and why NVDEC did not."""
        return {} if self.fallback is None else {"decoder": "cpu", "nvdec_fallback": self.fallback}


def open_nvdec(choice: str, device: str) -> NvdecReader | None:
    """The NVDEC reader a worker uses for runtime.decoder `choice` on `device`, or None (decode on the CPU).
    Only `nvdec` opens one (and is checked here, where a remote worker first sees its device); `auto`'s
    line was said by the driver (run_decoder), not once more by every worker."""
    if choice != "nvdec":
        return None
    choose_decoder(choice, device)
    return NvdecReader(device)


def run_decoder(choice: str, device: str, scheduler: str) -> str:
    """The driver's check of runtime.decoder before planning: 'nvdec' or 'cpu' as this machine's workers
    will resolve it (`nvdec` where it cannot run raises DecoderUnavailable; `auto` is the CPU and says
    once why). Workers on other machines (a dask scheduler address) check nvdec when they open the stage."""
    if choice == "nvdec" and "://" in scheduler:
        return choice
    return choose_decoder(choice, planned_device(device))


def nvdec_frame_sets(
    reader: NvdecReader | None, request: ItemRequest, sets: list[np.ndarray]
) -> "list[torch.Tensor] | OnCpu":
    """THE hook of the stages' frame source. Per clip, several lists of video frame numbers (the pose
    stage's and each rgb feature set's) from ONE NVDEC decode of their union: each set's frames in its
    order, full size, on the reader's device. Or OnCpu: the caller decodes the clip on its CPU path (the
    DecodeService child, as without NVDEC) and adds `OnCpu.provenance` to the clip's items, when
    - there is no reader (runtime.decoder resolved to cpu, or the mmpose backend);
    - NVDEC declines the clip from its probe row (`nvdec_declines`; said once per reason);
    - NVDEC failed on it (NvdecFailed; said once per kind). The CPU decoder's verdict is then what is
      stored, so a short stream fails (`truncated`) only when the CPU decoder cannot decode those frames
      either; where it can, the item is stored and records NVDEC's shortfall."""
    if reader is None:
        return OnCpu()
    reason = nvdec_declines(request.row)
    if reason is not None:
        _say_once(f"runtime.decoder: {reason}: such clips are decoded on the CPU (first: {request.video_path})", reason)
        return OnCpu()
    import torch

    union = np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in sets]))
    try:
        decoded = reader.read(request.video_path, union)
    except NvdecFailed as failed:
        _say_once(
            f"runtime.decoder: NVDEC failed on {request.video_path} ({failed}): such clips are decoded on "
            "the CPU, their items say so (provenance nvdec_fallback)",
            f"failed: {failed.kind}",
        )
        return OnCpu(str(failed))
    return [
        decoded if np.array_equal(s, union) else decoded[torch.from_numpy(np.searchsorted(union, s)).to(decoded.device)]
        for s in sets
    ]
