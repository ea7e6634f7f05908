"""Frame strips of clips for figures: a few evenly spaced frames of each clip, decoded from its video.

The probe view says where each clip is (video path under the data root, first frame, frame count).
Decoding goes through the child-process DecodeService as in the stages, so a hostile file times out
instead of hanging the evaluate stage; a clip that cannot be shown (no probe row, failed probe, video
gone, decode error) gets a one-line reason instead of frames, and the figure says so in its place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.report.retrieval_figure import frame_strip
from pipeline.video.sampling import uniform_frames

STRIP_SHORT_SIDE = 144  # px: frames are shrunk to this before they travel; a strip is drawn ~0.75 in tall


def clip_strips(
    manifests: Path, data_root: Path, sample_ids: list[str], frames: int, timeout_s: float = 120.0
) -> dict[str, np.ndarray | str]:
    """sample id -> frame strip (H, W, 3) uint8 of `frames` evenly spaced frames, or why there is none."""
    from pipeline.manifest.schema import ManifestError
    from pipeline.runner.plan import read_view
    from pipeline.store.records import ItemFailed
    from pipeline.video.service import DecodeService

    try:
        table, _ = read_view(Path(manifests), "probe")
    except ManifestError as err:
        return {s: f"no frames: {err}" for s in sample_ids}
    wanted = set(sample_ids)
    rows = {r["sample_id"]: r for r in table.to_pylist() if r["sample_id"] in wanted}
    strips: dict[str, np.ndarray | str] = {}
    tickets = {}
    with DecodeService(timeout_s=timeout_s) as service:
        for sample_id in sample_ids:
            row = rows.get(sample_id)
            if row is None:
                strips[sample_id] = f"no frames: {sample_id} is not in {manifests}/probe.parquet"
            elif row.get("probe_status") != "ok" or not row.get("num_frames"):
                strips[sample_id] = f"no frames: probe {row.get('probe_status')} ({row.get('probe_reason')})"
            else:
                indices = int(row.get("first_frame") or 0) + uniform_frames(int(row["num_frames"]), frames)
                tickets[sample_id] = service.submit_frames(
                    Path(data_root) / row["video_path"], indices, STRIP_SHORT_SIDE
                )
        for sample_id, ticket in tickets.items():
            try:
                strips[sample_id] = frame_strip(service.frames(ticket))
            except ItemFailed as err:
                strips[sample_id] = f"no frames: {err}"
    return strips
