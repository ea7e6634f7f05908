"""GPU decoding with NVDEC (PyNvVideoCodec): a clip's frames straight into a uint8 CUDA tensor, and the
`runtime.decoder` choice (auto | cpu | nvdec).

Why PyNvVideoCodec (the comparison with DALI and torchcodec is in docs/gpu.md): a 27 MB wheel on PyPI
that brings its own demuxer (no system FFmpeg), needs only the NVIDIA driver, decodes frames by index
and hands them over as CUDA memory that torch takes without a copy to the host.

The CPU decoders (pipeline/video/decode.py, in the child process of service.py) stay the reference:
what NVDEC cannot do goes there, clip by clip (a codec NVDEC lacks, a rotated container: NVDEC ignores
the display matrix). NVDEC runs in the stage's own process: it is not decord, whose deadlocks on
hostile files are what the child process guards against, and frames must stay on this process's GPU.
Colour conversion is NVDEC's own (YUV -> RGB on the GPU), so pixels differ from FFmpeg's by a few
levels; benchmarks/gpu.sh measures that against the documented tolerance.

Stages use `open_nvdec(runtime.decoder, device)` once per worker (None = decode on the CPU as before)
and `nvdec_frames(reader, path, indices)` per clip (None = this clip goes to the CPU), or
`nvdec_frame_sets` for several frame lists of one clip (pose and rgb sharing a decode). The driver
calls `run_decoder` before planning, so `nvdec` where it cannot run stops the run before any work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from pipeline.config import ParamError
from pipeline.store.records import ItemFailed

log = logging.getLogger(__name__)

DECODERS = ("auto", "cpu", "nvdec")
# What NVDEC decodes on every GPU since Turing (H100/H200 included); MPEG-4 Part 2 and MPEG-2 are missing
# from recent chips, so they go to the CPU decoder.
NVDEC_CODECS = ("h264", "hevc", "vp9", "av1")
INSTALL_HINT = "pip install 'seds-pipeline[nvdec]' (PyNvVideoCodec)"

_said: set[str] = set()  # each fallback reason is logged once per process


class DecoderUnavailable(ParamError):
    """runtime.decoder: nvdec was asked for where it cannot run (stops the run before any item)."""


def _say_once(message: str, key: str | None = None) -> None:
    key = message if key is None else key
    if key not in _said:
        _said.add(key)
        log.warning(message)


def nvdec_missing(device: str) -> str | None:
    """Why NVDEC cannot run on `device` ('cpu', 'cuda', 'cuda:N'), or None when it can."""
    import torch

    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        return "no CUDA device"
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return f"PyNvVideoCodec is not installed ({INSTALL_HINT})"
    except Exception as err:  # it raises RuntimeError when the driver has no NVDEC/NVENC libraries
        return f"PyNvVideoCodec does not load: {str(err).splitlines()[0]}"
    return None


def choose_decoder(choice: str, device: str) -> str:
    """'nvdec' or 'cpu' for runtime.decoder `choice` on `device`. `auto` falls back to the CPU with one log
    line saying why; `nvdec` where it cannot run raises DecoderUnavailable naming the reason."""
    if choice not in DECODERS:
        raise ParamError(f"runtime.decoder: {choice!r} is not one of {list(DECODERS)}")
    if choice == "cpu":
        return "cpu"
    reason = nvdec_missing(device)
    if reason is None:
        return "nvdec"
    if choice == "nvdec":
        raise DecoderUnavailable(f"runtime.decoder: nvdec cannot run on device {device!r}: {reason}. "
                                 "Use runtime.decoder: auto (falls back to the CPU) or cpu.")
    _say_once(f"runtime.decoder auto: decoding on the CPU ({reason})")
    return "cpu"


def clip_unsupported(path: Path) -> str | None:
    """Why NVDEC should not decode this clip (the CPU decoder then does), or None. Reads the container
    header only (PyAV)."""
    from pipeline.video.decode import _container_facts

    path = Path(path)
    if path.is_dir():
        return "a frame folder"
    facts = _container_facts(path)
    if facts.still:
        return f"an image ({facts.still})"
    if facts.quarter_turns:
        return "a rotated container (NVDEC ignores the display matrix)"
    codec = facts.codec
    if codec not in NVDEC_CODECS:
        return f"codec {codec or 'unknown'} is not one NVDEC decodes ({', '.join(NVDEC_CODECS)})"
    return None


class NvdecReader:
    """Frames of one clip at a time from PyNvVideoCodec's SimpleDecoder, as RGB uint8 (T, H, W, 3) on `device`."""

    def __init__(self, device: str):
        import PyNvVideoCodec as nvc
        import torch

        self.nvc = nvc
        self.device = torch.device(device)
        self.gpu = self.device.index if self.device.index is not None else torch.cuda.current_device()

    def read(self, path: Path, indices: np.ndarray) -> "torch.Tensor":  # noqa: F821
        """Frames at `indices` (video frame numbers, any order, repeats allowed), each decoded once."""
        import torch

        indices = np.asarray(indices, dtype=np.int64)
        wanted = np.unique(indices)
        try:
            decoder = self.nvc.SimpleDecoder(str(path), gpu_id=self.gpu, use_device_memory=True,
                                             output_color_type=self.nvc.OutputColorType.RGB)
            meta = decoder.get_stream_metadata()
            # SimpleDecoder drops indices past the container's frame count with a warning: count them here.
            frames = decoder.get_batch_frames_by_index(wanted.tolist()) if len(wanted) else []
            if len(frames) != len(wanted):
                raise ItemFailed("truncated", f"{path}: NVDEC delivered {len(frames)} of {len(wanted)} frames "
                                              f"(the container announces {len(decoder)})")
            with torch.cuda.device(self.device):
                stack = torch.stack([torch.from_dlpack(frame).reshape(meta.height, meta.width, 3)
                                     for frame in frames]) if frames else \
                    torch.zeros((0, meta.height, meta.width, 3), dtype=torch.uint8, device=self.device)
                torch.cuda.synchronize(self.device)  # the decoder's stream has written every frame we copied
        except ItemFailed:
            raise
        except Exception as err:  # PyNvVideoCodec raises RuntimeError/ValueError on damaged streams
            raise ItemFailed("truncated", f"{path}: NVDEC: {type(err).__name__}: {err}") from None
        return stack[torch.from_numpy(np.searchsorted(wanted, indices)).to(stack.device)]


class FrameReader(Protocol):
    """What the stages use of a GPU decoder: NvdecReader's contract (a stand-in at this boundary lets the
    tests run the stages' device path on the CPU, where PyNvVideoCodec cannot be installed)."""

    def read(self, path: Path, indices: np.ndarray) -> "torch.Tensor":  # noqa: F821
        """uint8 (T, H, W, 3) RGB frames at `indices` (video frame numbers); ItemFailed for a bad clip."""


ReaderFactory = Callable[[str, str], "FrameReader | None"]  # (runtime.decoder, device) -> reader or None (CPU)


def open_nvdec(choice: str, device: str) -> NvdecReader | None:
    """The NVDEC reader a worker uses for runtime.decoder `choice` on `device`, or None (decode on the CPU)."""
    return NvdecReader(device) if choose_decoder(choice, device) == "nvdec" else None


def run_decoder(choice: str, device: str, scheduler: str) -> str:
    """The driver's check of runtime.decoder before planning: 'nvdec' or 'cpu' as this machine's workers
    will resolve it (`nvdec` where it cannot run raises DecoderUnavailable; `auto` says once why it falls
    back). Workers on other machines (a dask scheduler address) decide for themselves when they open the
    stage, so there the choice is returned as given."""
    if choice == "cpu" or "://" in scheduler:
        return choice
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return choose_decoder(choice, device)


def nvdec_frames(reader: FrameReader | None, path: Path, indices: np.ndarray) -> "torch.Tensor | None":  # noqa: F821
    """THE hook of the stages' frame source: the clip's frames at `indices` as a uint8 (T, H, W, 3) CUDA
    tensor when NVDEC is in use and can decode this clip; None when the clip must go to the CPU decoder
    (the DecodeService path, unchanged). A clip NVDEC fails on raises ItemFailed, recorded as usual."""
    if reader is None:
        return None
    reason = clip_unsupported(Path(path))
    if reason is not None:
        _say_once(f"runtime.decoder: {reason}: such clips are decoded on the CPU (first: {path})", reason)
        return None
    return reader.read(Path(path), indices)


def nvdec_frame_sets(reader: FrameReader | None, path: Path,
                     sets: list[np.ndarray]) -> "list[torch.Tensor] | None":  # noqa: F821
    """`nvdec_frames` for several lists of video frame numbers of one clip (the pose stage's and each rgb
    feature set's), from ONE decode of their union: each set's frames in its order, full size. None when
    the clip goes to the CPU decoder; a decode failure raises one ItemFailed for every set."""
    if reader is None:
        return None
    import torch

    union = np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in sets]))
    decoded = nvdec_frames(reader, path, union)
    if decoded is None:
        return None
    return [decoded if np.array_equal(s, union) else
            decoded[torch.from_numpy(np.searchsorted(union, s)).to(decoded.device)] for s in sets]
