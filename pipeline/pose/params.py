"""The `pose` section of params.yaml: which RTMPose, which weights, which box, which frames, how fast.

Output-changing knobs (model, checkpoint, backend, box rule and its settings, frames, flip_test) enter
the stage fingerprint, and so does the precision the backbone will run in (pipeline.models.precision:
fp32 on the CPU whatever `precision` says); batch_size, chunk_frames and compile only change
speed and memory and stay out of it (like runtime.device: the item's provenance records the device it ran on).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import ParamError, knob
from pipeline.models.memory_budget import AUTO
from pipeline.models.rtmpose.spec import DEFAULT_MODEL, MODELS
from pipeline.video.sampling import FRAME_RULES

OFFICIAL = "official"
BOX_RULES = ("whole_frame", "two_pass", "mmdet")
# The person detector mmpose's RTMPose demo pairs with RTMPose-WholeBody (COCO + Objects365 persons).
DEFAULT_DETECTOR_CONFIG = "rtmdet_m_640-8xb32_coco-person"
DETECTOR_CHECKPOINTS = {
    "rtmdet_m_640-8xb32_coco-person": "https://download.openmmlab.com/mmpose/v1/projects/rtmpose/rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth",
    "rtmdet_nano_320-8xb32_coco-person": "https://download.openmmlab.com/mmpose/v1/projects/rtmpose/rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.pth",
}


@dataclass(frozen=True)
class PoseParams:
    model: str = knob(
        DEFAULT_MODEL,
        choices=tuple(MODELS),
        help="RTMPose-WholeBody config of mmpose 1.3 (the paper's: the -l 384x288 one)",
    )
    checkpoint: str = knob(
        OFFICIAL,
        help="'official' (the model zoo's weights for pose.model, downloaded once into "
        "~/.cache/seds/checkpoints), a URL, a local path, or 'random' (explicit, offline)",
    )
    backend: str = knob(
        "native",
        choices=("native", "mmpose"),
        help="native: plain PyTorch, no mmcv needed; mmpose: mmpose's own model and test pipeline",
    )
    box: str = knob(
        "whole_frame",
        choices=BOX_RULES,
        help="signer box: whole_frame; two_pass (whole frame, then the box of the confident body "
        "keypoints); mmdet (RTMDet person detector, one signer tracked across frames)",
    )
    box_threshold: float = knob(0.3, min=0.0, help="two_pass: keypoint score above which a body keypoint counts")
    box_min_keypoints: int = knob(
        4, min=2, max=17, help="two_pass: fewer confident body keypoints than this keeps the whole frame"
    )
    detector_config: str = knob(
        DEFAULT_DETECTOR_CONFIG, help="mmdet: a config of mmpose's demo/mmdetection_cfg (by name) or a config file path"
    )
    detector_checkpoint: str = knob(
        OFFICIAL, help="mmdet: 'official' (for the two named configs), a URL, a path or 'random'"
    )
    detector_min_score: float = knob(
        0.3, min=0.0, max=1.0, help="mmdet: person detections below this score are ignored"
    )
    box_smoothing: float = knob(
        0.5, min=0.0, max=0.99, help="mmdet: weight of the previous frame's box in the signer box (0: no smoothing)"
    )
    splits: list[str] | None = knob(
        None,
        help="only the clips of these splits (null: every split); the others are "
        "`skipped` in the view, neither computed nor failed: the sample, which "
        "trains on ground truth, estimates pose for its test clips alone",
    )
    frames: str = knob("thin", choices=FRAME_RULES, help="frame rule shared with rgb: thin, all, every, uniform")
    frames_value: int = knob(300, min=1, help="thin: at most this many frames; every: step; uniform: count")
    flip_test: bool = knob(True, help="average with the horizontally flipped crop (the configs' test_cfg)")
    batch_size: int | str = knob(
        32,
        min=1,
        help="crops per forward pass (speed/memory only), or 'auto': as many as "
        "the device's memory budget holds, at most 256 "
        "(pipeline/models/memory_budget.py)",
    )
    chunk_frames: int = knob(64, min=1, help="frames decoded and held at once (memory only: ~6 MB per 1080p frame)")
    compile: bool = knob(
        False,
        help="torch.compile the native network (speed only, not in the fingerprint; worth it "
        "on CUDA for long runs: the first batch of each size pays a compile of ~1 min)",
    )
    precision: str = knob(
        "auto",
        choices=("auto", "fp32", "fp16", "bf16"),
        help="auto: bf16 autocast on CUDA (fp16 where bf16 is unsupported), fp32 on CPU; the "
        "precision a run computes in enters the fingerprint",
    )

    def validate(self, prefix: str) -> None:
        if isinstance(self.batch_size, str) and self.batch_size != AUTO:
            raise ParamError(f"{prefix}.batch_size: {self.batch_size!r} is not a number of crops or 'auto'")
        if (
            self.box == "mmdet"
            and self.detector_checkpoint == OFFICIAL
            and self.detector_config not in DETECTOR_CHECKPOINTS
        ):
            raise ParamError(
                f"{prefix}.detector_checkpoint: 'official' is only known for "
                f"{', '.join(DETECTOR_CHECKPOINTS)}; give a URL, a path or 'random' for "
                f"{self.detector_config!r}"
            )

    @property
    def checkpoint_spec(self) -> str:
        return MODELS[self.model].official_checkpoint if self.checkpoint == OFFICIAL else self.checkpoint

    @property
    def detector_checkpoint_spec(self) -> str:
        if self.detector_checkpoint == OFFICIAL:
            return DETECTOR_CHECKPOINTS[self.detector_config]
        return self.detector_checkpoint
