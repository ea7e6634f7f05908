"""`seds import pose`: keypoints of .pose files into the store as the `pose_file` stage, which select
reads like the pose stage (`select.source: pose_file`), so a lab that has poses trains without RTMPose.

Each clip's `<name>.pose` is mapped onto the 133 COCO-WholeBody points by its layout
(pipeline/interop/pose_format.py: COCO-WholeBody one to one; OpenPose and MediaPipe Holistic where a
point has a counterpart, the rest score 0, which select masks) and stored as the pose stage stores
its items: keypoints (T, 133, 2) float32 pixels, scores (T, 133) float32, frames (T,) int64 clip frame
indices. Frame i of the file is clip frame i (as `seds export pose` writes), or, when the file's fps
differs from the clip's (the probe view's `fps`) by more than 1%, the clip frame showing at the file
frame's time. Frames where no point has a confidence above 0 carry nothing and are left out (our own
export writes the unsampled frames so). The frame size is `--frame-size`, else the file's dimensions,
else the view's width/height. Refused, as recorded failures naming the file: an unreadable file
(`bad_format`), a layout none of LAYOUTS (`unknown_layout`, naming its components), a file longer
than the clip, with non-finite confidences or with non-finite coordinates where the confidence is
above 0 (`bad_format`), a file with no confident point (`no_keypoints`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.fingerprint import StageFingerprint
from pipeline.interop.pose_format import PoseFileError, PoseLayoutError, read_pose, to_wholebody
from pipeline.interop.store_import import FileImport, ImportSummary, import_files

STAGE = "pose_file"
VERSION = 2  # 2: the view values an item is made from (fps, frame count, size) enter its key
FPS_TOLERANCE = 0.01  # relative: 29.97 vs 30 fps is the same rate written two ways


class EmptyPoseFile(ValueError):
    """A .pose file in which no frame has a point with confidence above 0."""


def clip_frames(count: int, file_fps: float, clip_fps: float | None) -> np.ndarray:
    """(count,) int64 clip frame index of each file frame: the same index when the rates agree (or the
    clip's is unknown), else the clip frame showing at the file frame's time, floor(i / file_fps *
    clip_fps) (several file frames can land on one clip frame when the file runs faster)."""
    index = np.arange(count, dtype=np.int64)
    if not clip_fps or not file_fps or abs(file_fps - clip_fps) <= FPS_TOLERANCE * clip_fps:
        return index
    return np.floor(index * (clip_fps / file_fps) + 1e-6).astype(np.int64)


def pose_item(
    path: Path, row: dict[str, Any], frame_size: tuple[int, int] | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One clip's item (keypoints, scores, frames) and attrs from its .pose file (see the module doc)."""
    pose = read_pose(path)
    body = to_wholebody(pose)
    if not np.isfinite(body.scores).all():
        raise PoseFileError(f"{path}: holds NaN or infinite confidences")
    frames = clip_frames(len(body.frames), pose.fps, row.get("fps"))
    keep = np.flatnonzero((body.scores > 0).any(axis=1))
    if not len(keep):
        raise EmptyPoseFile(f"{path}: none of its {len(frames)} frames has a point with confidence above 0")
    keep = keep[np.unique(frames[keep], return_index=True)[1]]  # one file frame per clip frame: the first
    keypoints, scores, frames = body.keypoints[keep], body.scores[keep], frames[keep]
    broken = ~np.isfinite(keypoints)
    if (broken & (scores > 0)[..., None]).any():
        raise PoseFileError(f"{path}: holds NaN or infinite coordinates for points with confidence above 0")
    keypoints[broken] = 0.0  # under a zero confidence (masked): a NaN there means "no point", as 0 does
    num_frames = row.get("num_frames")
    if num_frames is not None and frames[-1] >= num_frames:
        raise PoseFileError(
            f"{path}: has keypoints at clip frame {int(frames[-1])} ({len(body.frames)} frames at "
            f"{pose.fps:g} fps) but the clip has {num_frames} frames at {row.get('fps') or 0:g} fps; "
            "write the .pose of the clip's own frames (frame 0 = the clip's first)"
        )
    width, height = frame_size or (
        (pose.width, pose.height) if pose.width and pose.height else (row.get("width"), row.get("height"))
    )
    attrs: dict[str, Any] = {
        "frames_sampled": len(frames),
        "layout": body.layout,
        "points_mapped": int(body.mapped.sum()),
        "file_fps": pose.fps,
        "file_frames": len(body.frames),
    }
    if width and height:
        attrs.update(width=int(width), height=int(height))
    return {"keypoints": keypoints, "scores": scores, "frames": frames}, attrs


def import_pose_files(
    folder: Path,
    view: Path,
    out_manifests: Path,
    store_root: Path,
    source: str,
    *,
    name_column: str = "sample_id",
    frame_size: tuple[int, int] | None = None,
    compression: str = "lzf",
) -> ImportSummary:
    """Import `folder/<row[name_column]>.pose` for every row of `view`; write out_manifests/pose_file.parquet."""
    fingerprint = StageFingerprint(
        STAGE,
        VERSION,
        {"import": "pose_format", "source": source, "frame_size": list(frame_size) if frame_size else None},
    )
    spec = FileImport(
        STAGE,
        fingerprint,
        ".pose",
        lambda path, row: pose_item(path, row, frame_size),
        ((PoseLayoutError, "unknown_layout"), (PoseFileError, "bad_format"), (EmptyPoseFile, "no_keypoints")),
        ("fps", "num_frames") + (() if frame_size else ("width", "height")),
    )
    return import_files(
        spec, folder, view, out_manifests, store_root, source, name_column=name_column, compression=compression
    )
