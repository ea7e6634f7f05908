"""The pose stage: RTMPose-WholeBody keypoints for the sampled frames of every clip.

Per clip it writes `keypoints` (T, 133, 2) float32 frame pixels, `scores` (T, 133) float32 (RTMPose's
SimCC confidences: not probabilities, about 0..1 for a trained model), `boxes` (T, 4) float32 xyxy
frame pixels (the signer box each crop was cut from, before the 1.25 padding), and `frames` (T,)
int64 clip frame indices (0 = the clip's first frame, chosen by pose.frames / pose.frames_value, the
same rule the rgb stage uses). attrs: width, height, frames_sampled, box_rule, whole_frame_fallbacks,
model, backend (plus signer_reselections for the mmdet box).

Frames of many clips are decoded a unit ahead in a child process (pipeline/pose/batching.py), cut
into top-down crops and run through the model `pose.batch_size` crops at a time. Decode failures
become recorded failures (truncated, decode_timeout, ...); a missing or unsafe checkpoint, or a
backend that is not installed, stops the run before any work with an error naming the param.
With the native backend and runtime.decoder resolving to nvdec, clips NVDEC takes are decoded on the
GPU and cropped there (pipeline/pose/device_input.py); the mmpose backend always decodes on the CPU.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Iterator

import numpy as np

from pipeline.config import ParamError
from pipeline.fingerprint import hash_file, hash_json
from pipeline.models.checkpoints import Checkpoint, resolve_checkpoint
from pipeline.models.precision import planned_precision
from pipeline.models.rtmpose.spec import MODELS, RTMPoseSpec
from pipeline.pose.batching import ClipJob, Piece, stream_on_device, stream_units, unit_frames
from pipeline.pose.boxes import SignerTrack, describe_rule, keypoint_boxes, whole_frame_box
from pipeline.pose.openmmlab import OpenMMLabMissing, detector_config, rtmpose_config
from pipeline.pose.params import PoseParams
from pipeline.runner.stage import ItemRequest, Stage, WorkerContext
from pipeline.store.records import Failure, Item
from pipeline.video.nvdec import open_nvdec
from pipeline.video.sampling import frame_list
from pipeline.video.service import DecodeService

MIN_BOX_PIXELS = 1.0  # detections thinner than this (pixels) cannot be cropped and are ignored


class PoseStage(Stage):
    name = "pose"
    VERSION = 2  # 2: BatchNorm folded, NHWC, maxima on the device (same values up to float rounding)
    upstream = "probe"
    view_attrs = ("width", "height", "frames_sampled", "box_rule", "whole_frame_fallbacks")
    uses_gpu = True
    follows_decoder = True

    @property
    def p(self) -> PoseParams:
        return self.params["pose"]

    @property
    def spec(self) -> RTMPoseSpec:
        return MODELS[self.p.model]

    # -- what the output depends on --------------------------------------------------------------
    @cached_property
    def checkpoint(self) -> Checkpoint:
        return resolve_checkpoint(self.p.checkpoint_spec, "pose.checkpoint")

    @cached_property
    def detector_checkpoint(self) -> Checkpoint:
        return resolve_checkpoint(self.p.detector_checkpoint_spec, "pose.detector_checkpoint")

    def _config_hash(self, path_of) -> str:
        try:
            path = path_of()
        except OpenMMLabMissing as err:
            raise ParamError(str(err)) from None
        if not path.is_file():
            raise ParamError(f"{path} does not exist (pose.model / pose.detector_config)")
        return hash_file(path)

    def fingerprint_inputs(self):
        p = self.p
        precision = planned_precision(self.params.runtime.device, p.precision) if p.backend == "native" else "fp32"
        params = {
            "model": p.model,
            "backend": p.backend,
            "box": p.box,
            "frames": p.frames,
            "flip_test": p.flip_test,
            "precision": precision,
        }
        if p.frames != "all":
            params["frames_value"] = p.frames_value
        if p.box == "two_pass":
            params.update(box_threshold=p.box_threshold, box_min_keypoints=p.box_min_keypoints)
        artifacts = {"model": hash_json(self.spec.as_dict()), "checkpoint": self.checkpoint.content_hash}
        if p.backend == "mmpose":
            artifacts["config"] = self._config_hash(lambda: rtmpose_config(p.model))
        if p.box == "mmdet":
            params.update(
                detector_config=p.detector_config,
                detector_min_score=p.detector_min_score,
                box_smoothing=p.box_smoothing,
            )
            artifacts["detector_config"] = self._config_hash(lambda: detector_config(p.detector_config))
            artifacts["detector_checkpoint"] = self.detector_checkpoint.content_hash
        return params, artifacts

    def describe_weights(self) -> str:
        text = f"{self.p.model} ({self.p.backend}): {self.checkpoint.describe()}"
        if self.p.box == "mmdet":
            text += f"; detector {self.p.detector_config}: {self.detector_checkpoint.describe()}"
        return text

    @property
    def box_rule(self) -> str:
        p = self.p
        return describe_rule(
            p.box,
            threshold=p.box_threshold,
            min_keypoints=p.box_min_keypoints,
            min_score=p.detector_min_score,
            smoothing=p.box_smoothing,
        )

    # -- per worker ------------------------------------------------------------------------------
    def skip_reason(self, row: dict[str, Any]) -> str | None:
        splits = self.p.splits
        if splits is not None and row.get("split") not in splits:
            return f"split {row.get('split')!r} is not in pose.splits {splits}"
        return None

    def open(self, ctx: WorkerContext) -> None:
        from pipeline.models.memory_budget import pose_batch

        p = self.p
        batch = pose_batch(p.batch_size, p.model, p.flip_test, ctx.device, ctx.workers)
        if p.backend == "native":
            from pipeline.pose.native import NativeEstimator

            self.estimator = NativeEstimator(
                self.spec, self.checkpoint, ctx.device, batch, p.precision, p.flip_test, p.compile
            )
        else:
            from pipeline.pose.mmpose_backend import MmposeEstimator

            self.estimator = MmposeEstimator(self.spec, self.checkpoint, ctx.device, batch, p.flip_test)
        self.detector = None
        if p.box == "mmdet":
            from pipeline.pose.detector import PersonDetector

            self.detector = PersonDetector(p.detector_config, self.detector_checkpoint, ctx.device, batch)
        # NVDEC frames stay on the GPU, which only the native backend takes (mmpose's pipeline wants host frames).
        self.reader = open_nvdec(self.params.runtime.decoder, ctx.device) if p.backend == "native" else None

    def process(self, requests: list[ItemRequest], ctx: WorkerContext) -> Iterator[Item | Failure]:
        jobs = []
        for r in requests:
            job = self.clip_job(r)
            if isinstance(job, Failure):
                yield job
                continue
            jobs.append(job)
        for job in self.stream(jobs):
            yield self.finish(job)

    def clip_job(self, request: ItemRequest) -> ClipJob | Failure:
        """The clip's sampled frames as a job for `stream` (a Failure when it has none to sample)."""
        p = self.p
        frames = frame_list(int(request.row["num_frames"]), p.frames, p.frames_value)
        if not len(frames):
            return Failure(
                request.sample_id,
                "no_frames",
                f"{request.row['video_path']}: the clip has no frames to sample",
                request.item_key,
            )
        return ClipJob(request, frames, int(request.row["first_frame"]))

    def stream(self, jobs: list[ClipJob]) -> Iterator[ClipJob]:
        """Decode and estimate the jobs unit by unit; yield each once its frames are done (or failed).
        Clips NVDEC takes first (when it is in use), then the others through the CPU decoder child: those
        it declines or failed on (its errors are never the clip's failure: the CPU decoder's verdict is)."""
        declined: list[ClipJob] = []
        yield from stream_on_device(jobs, self.p.chunk_frames, self.reader, self._run_unit, declined)
        if declined:
            with DecodeService(timeout_s=self.params.runtime.decode_timeout_s) as decoder:
                yield from stream_units(declined, self.p.chunk_frames, decoder, self._run_unit)

    # -- one unit of frames ----------------------------------------------------------------------
    def _run_unit(self, pieces: list[Piece]) -> None:
        from pipeline.pose.device_input import estimate_frames

        images = unit_frames(pieces)  # host frames, or one device tensor (NVDEC)
        sizes = np.array([[image.shape[1], image.shape[0]] for image in images], dtype=np.float32)
        boxes, fallback = self._boxes(pieces, images, sizes)
        keypoints, scores = estimate_frames(self.estimator, images, boxes)
        offset = 0
        for piece in pieces:
            n = piece.stop - piece.start
            part = slice(offset, offset + n)
            piece.job.pieces.append(
                {"keypoints": keypoints[part], "scores": scores[part], "boxes": boxes[part], "fallback": fallback[part]}
            )
            piece.job.state.setdefault("size", tuple(int(v) for v in sizes[offset]))
            piece.job.done += n
            offset += n

    def _boxes(self, pieces: list[Piece], images, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) signer boxes and (N,) bool: frames that fell back to the whole frame. `images` are host
        frames or a device tensor: whole_frame needs the sizes only, two_pass runs on the device, and the
        mmdet detector is given host copies of the frames (it takes nothing else)."""
        from pipeline.pose.device_input import estimate_frames

        p = self.p
        whole = np.stack([whole_frame_box(int(w), int(h)) for w, h in sizes])
        if p.box == "whole_frame":
            return whole, np.zeros(len(images), dtype=bool)
        if p.box == "two_pass":
            first_keypoints, first_scores = estimate_frames(self.estimator, images, whole)
            return keypoint_boxes(first_keypoints, first_scores, sizes, p.box_threshold, p.box_min_keypoints)
        detections = self.detector.detect(images if isinstance(images, list) else list(images.cpu().numpy()))
        boxes, fallback = [], []
        offset = 0
        for piece in pieces:
            height, width = piece.images.shape[1:3]
            track = piece.job.state.setdefault("track", SignerTrack(width, height, p.box_smoothing))
            for found in detections[offset : offset + len(piece.images)]:
                size = found[:, 2:4] - found[:, :2]
                usable = found[(found[:, 4] >= p.detector_min_score) & np.all(size >= MIN_BOX_PIXELS, axis=1)]
                before = track.fallback_frames
                boxes.append(track.update(usable))
                fallback.append(track.fallback_frames > before)
            offset += len(piece.images)
        return np.stack(boxes).astype(np.float32), np.array(fallback)

    def finish(self, job: ClipJob) -> Item | Failure:
        """The job's item, or its decode failure; either records a decoder other than the CPU's alone
        (NVDEC's frames, or the CPU's after NVDEC failed: state["decoded_by"], set by stream_on_device)."""
        request = job.request
        decoded_by = job.state.get("decoded_by", {})
        if job.failure is not None:
            return Failure(
                request.sample_id, job.failure.reason, job.failure.message, request.item_key, dict(decoded_by)
            )
        width, height = job.state["size"]
        attrs = {
            "width": width,
            "height": height,
            "frames_sampled": len(job.frames),
            "box_rule": self.box_rule,
            "whole_frame_fallbacks": int(job.result("fallback").sum()),
            "model": self.p.model,
            "backend": self.p.backend,
        }
        if "track" in job.state:
            attrs["signer_reselections"] = job.state["track"].reselections
        arrays = {name: job.result(name) for name in ("keypoints", "scores", "boxes")}
        arrays["frames"] = job.frames.astype(np.int64)
        provenance = {
            "content_hash": request.content_hash,
            "start_s": request.start_s,
            "end_s": request.end_s,
            "precision": self.estimator.precision,
            "weights": self.describe_weights(),
        }
        provenance.update(decoded_by)  # nothing for clips only the CPU decoder saw: their provenance is as before
        return Item(request.item_key, request.sample_id, arrays, attrs, provenance)
