"""`seds viz keypoints SAMPLE_ID`: draw a clip's selected keypoints on one of its frames (PNG).

With `--stage select` (the default) the points are the select item's, placed at their pixel positions
from the stage select read (pose or gt_keypoints) and masked as select masked them; a `seds` item also
gets side panels of what the model is fed. With `--stage pose` or `--stage gt_keypoints` the 133 points
are selected by `select.parts` and masked by `select.min_score`. The frame is decoded from the clip.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.commands.common import EXIT_CANNOT_START, EXIT_OK, add_params_options, guarded, parse_overrides

KEYPOINT_STAGES = ("select", "pose", "gt_keypoints")
MIN_HEIGHT = 480  # px: smaller frames are enlarged by a whole factor before drawing


class VizError(ValueError):
    """The figure cannot be drawn: no such sample, stage not run, frame not sampled."""


def _view_row(manifests: Path, stage: str, sample_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    from pipeline.runner.plan import read_view

    table, fingerprints = read_view(manifests, stage)
    rows = [r for r in table.to_pylist() if r["sample_id"] == sample_id]
    if not rows:
        some = ", ".join(table.column("sample_id").to_pylist()[:5])
        raise VizError(f"{manifests}/{stage}.parquet has no sample {sample_id!r} (some it has: {some})")
    row = rows[0]
    if row.get(f"{stage}_status") != "ok":
        raise VizError(
            f"{stage} has no item for {sample_id}: status {row.get(f'{stage}_status')}, "
            f"reason {row.get(f'{stage}_reason')}"
        )
    return row, fingerprints


def _reader(store: Path, stage: str, fingerprints: dict[str, str]):
    from pipeline.store.layout import StageDir
    from pipeline.store.reader import StageReader

    if stage not in fingerprints:
        raise VizError(f"the view does not record a fingerprint for {stage}; rerun it")
    return StageReader(StageDir(store, stage, fingerprints[stage]))


def nearest_frame(frames: np.ndarray, wanted: int | None) -> int:
    """Position in `frames` of the clip frame nearest `wanted` (the middle one when None)."""
    if len(frames) == 0:
        raise VizError("the item holds no frame")
    if wanted is None:
        return len(frames) // 2
    return int(np.argmin(np.abs(frames.astype(np.int64) - wanted)))


def keypoints_figure(params, sample_id: str, stage: str = "select", frame: int | None = None) -> tuple[np.ndarray, int]:
    """The figure (RGB uint8) for one sample and the clip frame index it shows."""
    from pipeline.keypoints.layout import selection, selection_of_parts
    from pipeline.report.keypoints_figure import compose, draw_legend, draw_points, seds_panels, upscale
    from pipeline.video.decode import read_frames

    store, manifests = Path(params.runtime.store), Path(params.runtime.manifests)
    row, fingerprints = _view_row(manifests, stage, sample_id)
    reader = _reader(store, stage, fingerprints)
    key = row[f"{stage}_key"]
    item = reader.read(key)
    panels_from = None
    if stage == "select":
        attrs = reader.attrs(key)
        chosen = selection_of_parts(attrs["parts"])
        source = reader.row(key).provenance["upstream"]
        at = nearest_frame(item["frames"], frame)
        clip_frame = int(item["frames"][at])
        upstream = _reader(store, source, fingerprints).read(row[f"{source}_key"])
        pixel_at = int(np.flatnonzero(upstream["frames"] == clip_frame)[0])
        xy = upstream["keypoints"][pixel_at][chosen.indices]
        mask = item["mask"][at]
        if attrs["normalisation"] == "seds":
            panels_from = (item["keypoints"][at], mask)
        title = f"{sample_id}  frame {clip_frame}  select ({source}, {attrs['normalisation']})"
    else:
        p = params["select"]
        chosen = selection(p.parts)
        at = nearest_frame(item["frames"], frame)
        clip_frame = int(item["frames"][at])
        xy = item["keypoints"][at][chosen.indices]
        mask = (item["scores"][at][chosen.indices] > p.min_score).astype(np.uint8)
        title = f"{sample_id}  frame {clip_frame}  {stage}"
    video = Path(params["data"].root) / row["video_path"]
    image = read_frames(video, np.array([int(row["first_frame"]) + clip_frame]))[0]
    image, xy = upscale(image, xy.astype(np.float64), MIN_HEIGHT)
    figure = draw_legend(draw_points(image, xy, mask, chosen), chosen.parts, title)
    if panels_from is not None:
        norm_xy, norm_mask = panels_from
        crop = int(params["select"].seds_crop)
        figure = compose(figure, seds_panels(norm_xy, norm_mask, chosen, crop, figure.shape[0]))
    return figure, clip_frame


def viz_keypoints(args: argparse.Namespace) -> int:
    import sys

    from pipeline.config import load_params
    from pipeline.report.keypoints_figure import write_png
    from pipeline.store.records import ItemFailed

    params = load_params(args.params, parse_overrides(args.overrides))
    try:
        figure, clip_frame = keypoints_figure(params, args.sample_id, args.stage, args.frame)
    except (VizError, ItemFailed) as err:
        print(f"seds: error: {err}", file=sys.stderr)
        return EXIT_CANNOT_START
    out = Path(args.out) if args.out else Path("figures") / f"keypoints_{args.sample_id}_{args.stage}_f{clip_frame}.png"
    write_png(out, figure)
    asked = "" if args.frame is None or args.frame == clip_frame else f" (nearest sampled frame to {args.frame})"
    print(
        f"viz: {out} ({figure.shape[1]}x{figure.shape[0]} px): {args.sample_id}, {args.stage}, clip frame "
        f"{clip_frame}{asked}"
    )
    return EXIT_OK


def register(subparsers) -> None:
    viz = subparsers.add_parser("viz", help="figures of stage outputs (keypoints on a frame)")
    vsub = viz.add_subparsers(dest="viz_command", required=True, metavar="FIGURE")
    k = vsub.add_parser(
        "keypoints", help="draw a clip's selected keypoints and skeleton on one frame (PNG)", description=__doc__
    )
    k.add_argument("sample_id", help="the sample (manifest sample_id)")
    k.add_argument(
        "--stage",
        choices=KEYPOINT_STAGES,
        default="select",
        help="whose keypoints: select (default; pixel positions from its source), pose or gt_keypoints",
    )
    k.add_argument(
        "--frame",
        type=int,
        help="clip frame index (0 = the clip's first); the nearest sampled frame "
        "is drawn; default: the middle sampled frame",
    )
    k.add_argument("--out", help="PNG path (default: figures/keypoints_<sample>_<stage>_f<frame>.png)")
    add_params_options(k)
    k.set_defaults(func=guarded(viz_keypoints))
