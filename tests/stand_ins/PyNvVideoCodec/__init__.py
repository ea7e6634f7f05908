"""A stand-in for PyNvVideoCodec 2.x, the library pipeline/video/nvdec.py decodes through, for machines
without an NVIDIA GPU (CI). Tests put tests/stand_ins first on sys.path and set SEDS_NVDEC_ON_CPU=1 (NVDEC
may then be chosen on device cpu; the `nvdec_stand_in` fixture of tests/conftest.py does both), so the
real NvdecReader and the stages' NVDEC path run over it: only the library is stood in for.

What NvdecReader uses, under the names and keywords of the real API (PyNvVideoCodec API reference,
SimpleDecoder): `SimpleDecoder(enc_file_path, gpu_id=, use_device_memory=, output_color_type=)`,
`get_stream_metadata()` (width, height, num_frames, average_fps, codec_name), `len(decoder)` (the frames
the container announces), `get_batch_frames_by_index(indices)` (decoded frames that DLPack exports, in
the order asked; like the real one it drops indices past the container's frame count) and
`OutputColorType`. Frames are decoded with PyAV on the CPU as RGB uint8 (H, W, 3), so they are the CPU
decoder's pixels, and come in host memory only (use_device_memory=False, as NvdecReader asks on the CPU).

Tests make it misbehave per clip (by file name), as NVDEC does on a real GPU, with `FAIL`:
    out_of_memory, session_limit  RuntimeError when the decoder is created (cuvidCreateDecoder failing)
    driver_error                  RuntimeError when frames are asked for (a decode call failing)
    short                         every frame asked for but the last
and see what reached it: `OPENED` (file name per decoder created), `CALLS` ((file name, indices) per
get_batch_frames_by_index call).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FAIL: dict[str, str] = {}
OPENED: list[str] = []
CALLS: list[tuple[str, list[int]]] = []

# Messages in the style of the Video Codec SDK's NvDecoder errors, which PyNvVideoCodec raises as RuntimeError.
_ERRORS = {
    "out_of_memory": "cuvidCreateDecoder returned error 2 (CUDA_ERROR_OUT_OF_MEMORY): out of memory",
    "session_limit": "cuvidCreateDecoder returned error 999 (CUDA_ERROR_UNKNOWN): no free decode session",
    "driver_error": "cuvidDecodePicture returned error 700 (CUDA_ERROR_ILLEGAL_ADDRESS): driver error",
}
_ON_OPEN = ("out_of_memory", "session_limit")


class OutputColorType(enum.Enum):
    NATIVE = 0
    RGB = 1
    RGBP = 2


@dataclass(frozen=True)
class StreamMetadata:
    width: int
    height: int
    num_frames: int
    average_fps: float
    codec_name: str


class DecodedFrame:
    """One decoded frame, handed over as the real one is: through DLPack (torch.from_dlpack takes it)."""

    def __init__(self, pixels: np.ndarray):
        self._pixels = pixels

    def __dlpack__(self, *args, **kwargs):
        return self._pixels.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._pixels.__dlpack_device__()


class SimpleDecoder:
    def __init__(
        self,
        enc_file_path: str,
        gpu_id: int = 0,
        use_device_memory: bool = True,
        output_color_type: OutputColorType = OutputColorType.NATIVE,
    ):
        import av

        if use_device_memory or output_color_type is not OutputColorType.RGB:
            raise NotImplementedError(
                "the stand-in PyNvVideoCodec gives RGB frames in host memory only "
                "(use_device_memory=False, output_color_type=OutputColorType.RGB)"
            )
        self.path = Path(enc_file_path)
        OPENED.append(self.path.name)
        if FAIL.get(self.path.name) in _ON_OPEN:
            raise RuntimeError(_ERRORS[FAIL[self.path.name]])
        with av.open(os.fspath(self.path)) as container:
            stream = container.streams.video[0]
            announced = stream.frames or sum(1 for _ in container.decode(stream))
            self._meta = StreamMetadata(
                stream.width, stream.height, announced, float(stream.average_rate or 0), stream.codec_context.name
            )

    def get_stream_metadata(self) -> StreamMetadata:
        return self._meta

    def __len__(self) -> int:
        return self._meta.num_frames

    def get_batch_frames_by_index(self, indices: list[int]) -> list[DecodedFrame]:
        import av

        CALLS.append((self.path.name, list(indices)))
        failure = FAIL.get(self.path.name)
        if failure == "driver_error":
            raise RuntimeError(_ERRORS[failure])
        kept = [i for i in indices if 0 <= i < len(self)]
        if failure == "short":
            kept = kept[:-1]
        wanted, pixels = set(kept), {}
        with av.open(os.fspath(self.path)) as container:
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                if len(pixels) == len(wanted):
                    break
                if i in wanted:
                    pixels[i] = frame.to_ndarray(format="rgb24")
        return [DecodedFrame(pixels[i]) for i in kept if i in pixels]
