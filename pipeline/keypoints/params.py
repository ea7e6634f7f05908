"""The `select` section of params.yaml: the select stage's knobs, and (`gt_*`) those of the gt_keypoints
stage, which exists to feed `select` with the sample's ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import ParamError, knob
from pipeline.keypoints.layout import GROUPS, SelectionError, selection
from pipeline.keypoints.normalise import NORMALISATIONS, SedsRules
from pipeline.video.sampling import FRAME_RULES

SOURCES = ("pose", "gt_keypoints", "pose_file")
WRIST_MARGIN = SedsRules.bottom_margin  # the How2Sign loader's 50 px


@dataclass(frozen=True)
class SelectParams:
    source: str = knob(
        "pose",
        choices=SOURCES,
        help="the view select maps over: pose (RTMPose), gt_keypoints (the sample's ground truth) or "
        "pose_file (keypoints of .pose files, `seds import pose`)",
    )
    parts: list[str] = knob(
        default_factory=lambda: ["body", "hand"],
        choices=tuple(GROUPS),
        help="part groups, always output in the order body (7: COCO-WholeBody 0,5,7,9,6,8,10), "
        "left hand (91-111), right hand (112-132), face (23-90) or mouth (71-90)",
    )
    normalisation: str = knob(
        "seds",
        choices=NORMALISATIONS,
        help="none (pixels), seds (the SEDS authors' loader: 256 frame, hand boxes, "
        "dropped frames) or center (shoulder-centred, shoulder widths)",
    )
    min_score: float = knob(
        0.4,
        min=0.0,
        max=1.0,
        help="a joint scoring <= this is masked (mask 0); in seds also the authors' "
        "--threshold: hand joints at or below it are zeroed",
    )
    seds_frame: list[int] | None = knob(
        default_factory=lambda: [256, 256],
        min=1,
        help="seds: [width, height] px of the frame the authors' keypoints live in "
        "(How2Sign, PHOENIX: 256x256; CSL-Daily: 512x512); keypoints are "
        "scaled into it first; null: each clip's own size",
    )
    seds_crop: int = knob(256, min=2, help="seds: side px of the output frame of body and each hand (--crop_size)")
    seds_box_score: float = knob(
        0.1, min=0.0, max=1.0, help="seds: hand joints scoring above this make the hand's box (--frames_threshold)"
    )
    seds_wrist_margin: float | None = knob(
        WRIST_MARGIN,
        min=0.0,
        help="seds: the arm fallback's box needs the wrist more than this many px "
        "(of seds_frame) above the frame's bottom (How2Sign's and CSL-Daily's "
        "loaders: 50); null: no such condition (PHOENIX-2014T's loader)",
    )
    # The gt_keypoints stage (it exists to feed select). Flat keys, so `--set select.gt_frames=all` works.
    gt_file: str | None = knob(
        None,
        help="gt_keypoints: HDF5 of ground-truth keypoints (/<sample_id>/keypoints "
        "(T,133,2) px, scores (T,133)); null: <data.root>/keypoints.h5. Its "
        "content hash, never its path, enters the fingerprint",
    )
    gt_frames: str = knob(
        "thin",
        choices=FRAME_RULES,
        help="gt_keypoints: frame rule, as the pose stage's: thin (every ceil(T/value)-th, at most "
        "value), all, every (value-th), uniform (value frames)",
    )
    gt_frames_value: int = knob(300, min=1, help="gt_keypoints: the frame rule's number")

    def validate(self, prefix: str) -> None:
        try:
            selection(self.parts)
        except SelectionError as err:
            raise ParamError(f"{prefix}.parts: {err}") from None
        if self.seds_frame is not None and len(self.seds_frame) != 2:
            raise ParamError(f"{prefix}.seds_frame: expected [width, height] or null, got {self.seds_frame!r}")

    def rules(self) -> SedsRules:
        frame = None if self.seds_frame is None else (int(self.seds_frame[0]), int(self.seds_frame[1]))
        return SedsRules(
            frame=frame,
            crop=self.seds_crop,
            box_score=self.seds_box_score,
            joint_score=self.min_score,
            bottom_margin=self.seds_wrist_margin,
        )

    def gt_fingerprint(self) -> dict[str, Any]:
        """What changes what gt_keypoints writes (besides the file's content)."""
        return {"frames": self.gt_frames, **({} if self.gt_frames == "all" else {"frames_value": self.gt_frames_value})}

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes what select writes; the seds knobs only when seds is on."""
        chosen = selection(self.parts)
        out: dict[str, Any] = {
            "source": self.source,
            "parts": list(chosen.parts),
            "normalisation": self.normalisation,
            "min_score": self.min_score,
        }
        if self.normalisation == "seds":
            out.update(seds_frame=self.seds_frame, seds_crop=self.seds_crop, seds_box_score=self.seds_box_score)
            if self.seds_wrist_margin != WRIST_MARGIN:
                # Only where it departs from the 50 px every select item was computed with before the
                # param existed, so those items (How2Sign's, the sample's) keep their keys.
                out["seds_wrist_margin"] = self.seds_wrist_margin
        return out
