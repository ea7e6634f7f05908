"""The gt_keypoints stage: the sample's ground-truth 133 keypoints, written exactly as the pose stage
writes its estimates, so `select` (and anything after it) can run on truth instead of a random-weight
pose model.

Per clip it takes the frames the pose stage would take (the same named rule of
pipeline.video.sampling.frame_list, `select.gt_frames` / `gt_frames_value`, default thin 300) from the
generator's keypoints.h5 (/<sample_id>/keypoints (T,133,2) px, scores (T,133), one row per video frame)
and writes keypoints (T',133,2) float32, scores (T',133) float32, boxes (T',4) float32 xyxy px (the
extent of the visible body keypoints 0-16; the whole frame when none is visible) and frames (T',)
int64 clip frame indices. Each item's key hashes that clip's own group (keypoints and scores bytes) with
the video, so regenerating the file with more clips recomputes only the new ones; the path is in no key.
Failures: `no_ground_truth` (no group for the sample), `gt_mismatch` (its frame count or array shapes
do not match the clip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline.fingerprint import hash_bytes, hash_json
from pipeline.keypoints.layout import BODY, NUM_KEYPOINTS
from pipeline.keypoints.params import SelectParams
from pipeline.runner.stage import ItemRequest, Stage, WorkerContext
from pipeline.store.records import Failure, Item, ItemFailed
from pipeline.video.sampling import frame_list

BOX_RULE = "gt_body_extent"


def body_boxes(keypoints: np.ndarray, scores: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """(T, 4) xyxy px: min/max of the body keypoints (0-16) with score > 0 per frame; the whole frame
    [0, 0, W, H] for a frame with no visible body keypoint."""
    body_xy, visible = keypoints[:, BODY.start : BODY.stop], scores[:, BODY.start : BODY.stop] > 0
    lo = np.where(visible[..., None], body_xy, np.inf).min(axis=1)
    hi = np.where(visible[..., None], body_xy, -np.inf).max(axis=1)
    whole = np.array([0, 0, size_wh[0], size_wh[1]], dtype=np.float64)
    boxes = np.concatenate([lo, hi], axis=1)
    return np.where(visible.any(axis=1)[:, None], boxes, whole).astype(np.float32)


def group_hashes(path: Path) -> dict[str, str]:
    """sample_id -> hash of its group's keypoints and scores bytes (shape and dtype included)."""
    import h5py

    out = {}
    with h5py.File(path, "r") as gt:
        for sid, group in gt.items():
            parts = [
                f"{name}:{group[name].dtype.str}:{group[name].shape}".encode() + group[name][...].tobytes()
                for name in ("keypoints", "scores")
                if name in group
            ]
            out[sid] = hash_bytes(b"|".join(parts))
    return out


class GroundTruthKeypointsStage(Stage):
    name = "gt_keypoints"
    VERSION = 2
    upstream = "probe"
    reads_clips = False  # reads the sample's ground-truth file, never the video

    def __init__(self, params):
        super().__init__(params)
        self._group_hashes: dict[str, str] | None = None

    def _select(self) -> SelectParams:
        return self.params["select"]

    def gt_file(self) -> Path:
        p = self._select()
        return Path(p.gt_file) if p.gt_file else Path(self.params["data"].root) / "keypoints.h5"

    def fingerprint_inputs(self) -> tuple[dict[str, Any], dict[str, str]]:
        path = self.gt_file()
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: the ground-truth keypoints come with the sample "
                "(seds sample) or from select.gt_file"
            )
        return self._select().gt_fingerprint(), {"keypoints_h5": "per-clip group hash in each item key"}

    def item_content(self, row: dict[str, Any], content_hash: str) -> str:
        if self._group_hashes is None:
            self._group_hashes = group_hashes(self.gt_file())
        return hash_json({"video": content_hash, "ground_truth": self._group_hashes.get(row["sample_id"], "absent")})

    def describe_weights(self) -> str:
        return f"none (ground truth from {self.gt_file()})"

    def process(self, requests: list[ItemRequest], ctx: WorkerContext) -> Iterator[Item | Failure]:
        import h5py

        p, path = self._select(), self.gt_file()
        with h5py.File(path, "r") as gt:
            for request in requests:
                try:
                    arrays = self._read(gt, path, request, p)
                except ItemFailed as failed:
                    yield Failure(request.sample_id, failed.reason, failed.message, request.item_key)
                    continue
                row = request.row
                attrs = {
                    "width": int(row["width"]),
                    "height": int(row["height"]),
                    "box_rule": BOX_RULE,
                    "frame_rule": p.gt_frames,
                    "frame_value": p.gt_frames_value,
                }
                yield Item(
                    request.item_key,
                    request.sample_id,
                    arrays,
                    attrs,
                    {"content_hash": request.content_hash, "ground_truth": path.name},
                )

    @staticmethod
    def _read(gt, path: Path, request: ItemRequest, p: SelectParams) -> dict[str, np.ndarray]:
        row, sid = request.row, request.sample_id
        if sid not in gt:
            raise ItemFailed("no_ground_truth", f"{path} has no group /{sid}")
        group = gt[sid]
        if "keypoints" not in group or "scores" not in group:
            raise ItemFailed("gt_mismatch", f"{path}:/{sid} lacks keypoints or scores")
        kp, sc = group["keypoints"], group["scores"]
        if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 2) or sc.shape != kp.shape[:2]:
            raise ItemFailed(
                "gt_mismatch",
                f"{path}:/{sid} has keypoints {kp.shape} and scores {sc.shape}; "
                f"expected (T, {NUM_KEYPOINTS}, 2) and (T, {NUM_KEYPOINTS})",
            )
        if kp.shape[0] != row["video_frames"]:
            raise ItemFailed(
                "gt_mismatch",
                f"{path}:/{sid} has {kp.shape[0]} frames but the video decodes to "
                f"{row['video_frames']}: the keypoints do not belong to this video",
            )
        frames = frame_list(int(row["num_frames"]), p.gt_frames, p.gt_frames_value)
        video_frames = int(row["first_frame"]) + frames
        keypoints = kp[...][video_frames].astype(np.float32)
        scores = sc[...][video_frames].astype(np.float32)
        boxes = body_boxes(keypoints, scores, (int(row["width"]), int(row["height"])))
        return {"keypoints": keypoints, "scores": scores, "boxes": boxes, "frames": frames.astype(np.int64)}
