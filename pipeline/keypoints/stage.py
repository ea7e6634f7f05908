"""The select stage: whole-body keypoints (pose or gt_keypoints) -> the SEDS selection, normalised.

Per clip it reads the upstream item (keypoints (T,133,2) px, scores (T,133), frames (T,)), keeps the
selected points (49 in the SEDS order by default), applies the named normalisation and writes
keypoints (T',K,2) float32, scores (T',K) float32, mask (T',K) uint8 and frames (T',) int64 (clip frame
indices of the kept frames). Failures: `bad_upstream` (arrays not in the pose layout), `no_hands`
(seds: no frame has a hand box), `no_shoulders` (center: no frame with both shoulders confident).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from pipeline.keypoints.layout import Selection, selection
from pipeline.keypoints.normalise import BOX_ARM, BOX_JOINTS, BOX_NONE, Normalised, normalise
from pipeline.keypoints.params import SelectParams
from pipeline.keypoints.select import KeypointShapeError, check_wholebody
from pipeline.runner.stage import ItemRequest, Stage, WorkerContext
from pipeline.store.records import Failure, Item, ItemFailed

UNITS = {"none": "pixels", "seds": "crop pixels (0..seds_crop)", "center": "shoulder widths"}


class SelectStage(Stage):
    name = "select"
    VERSION = 2  # 2: face is the 48 non-lip face points (was all 68), so face and mouth combine
    view_attrs = ("kept_frames", "dropped_frames")
    reads_clips = False  # reads its upstream's items, never the video

    @property
    def upstream(self) -> str:  # type: ignore[override]  # chosen by params: pose or gt_keypoints
        return self._params.source

    @property
    def _params(self) -> SelectParams:
        return self.params["select"]

    def fingerprint_inputs(self) -> tuple[dict[str, Any], dict[str, str]]:
        return self._params.fingerprint(), {}

    def process(self, requests: list[ItemRequest], ctx: WorkerContext) -> Iterator[Item | Failure]:
        p = self._params
        chosen = selection(p.parts)
        reader = ctx.upstream_reader(self.upstream)
        for request in requests:
            key = request.upstream_key(self.upstream)
            try:
                arrays = reader.read(key, ["keypoints", "scores", "frames"])
                size = self._frame_size(reader.attrs(key), request)
                result = self._normalise(arrays, size, request, p, chosen)
            except ItemFailed as failed:
                yield Failure(request.sample_id, failed.reason, failed.message, request.item_key)
                continue
            frames = arrays["frames"].astype(np.int64)[result.kept]
            kept = int(result.kept.sum())
            attrs = {
                "parts": list(chosen.parts),
                "num_keypoints": chosen.size,
                "normalisation": p.normalisation,
                "units": UNITS[p.normalisation],
                "kept_frames": kept,
                "dropped_frames": len(result.kept) - kept,
                "width": size[0],
                "height": size[1],
            }
            if result.box_sources:
                attrs["hand_boxes"] = {
                    part: {
                        "joints": int((src == BOX_JOINTS).sum()),
                        "arm": int((src == BOX_ARM).sum()),
                        "none": int((src == BOX_NONE).sum()),
                    }
                    for part, src in result.box_sources.items()
                }
            yield Item(
                request.item_key,
                request.sample_id,
                {
                    "keypoints": result.keypoints,
                    "scores": arrays["scores"][result.kept][:, chosen.indices].astype(np.float32),
                    "mask": result.mask,
                    "frames": frames,
                },
                attrs,
                {"content_hash": request.content_hash, "upstream": self.upstream, "upstream_key": key},
            )

    @staticmethod
    def _frame_size(attrs: dict[str, Any], request: ItemRequest) -> tuple[int, int]:
        """(width, height) px of the clip: the upstream item's attrs, else the probe columns of the view."""
        width, height = attrs.get("width") or request.row.get("width"), attrs.get("height") or request.row.get("height")
        if not width or not height:
            raise ItemFailed("bad_upstream", f"{request.sample_id}: no frame size in the upstream item or view row")
        return int(width), int(height)

    def _normalise(
        self,
        arrays: dict[str, np.ndarray],
        size: tuple[int, int],
        request: ItemRequest,
        p: SelectParams,
        chosen: Selection,
    ) -> Normalised:
        keypoints, scores, frames = arrays["keypoints"], arrays["scores"], arrays["frames"]
        try:
            check_wholebody(keypoints, scores, f"{self.upstream} item of {request.sample_id}")
        except KeypointShapeError as err:
            raise ItemFailed("bad_upstream", str(err)) from None
        if frames.shape != (len(keypoints),):
            raise ItemFailed(
                "bad_upstream",
                f"{self.upstream} item of {request.sample_id}: frames have shape "
                f"{frames.shape}, expected ({len(keypoints)},)",
            )
        result = normalise(p.normalisation, keypoints, scores, chosen, size, p.min_score, p.rules())
        if not result.kept.any():
            raise ItemFailed(
                "no_hands",
                f"{request.sample_id}: none of its {len(keypoints)} frames has a hand box "
                f"(seds needs >= 10 hand joints scoring > {p.seds_box_score}, or a confident "
                "arm), so the authors' loader keeps no frame",
            )
        return result
