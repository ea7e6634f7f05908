"""`seds export pose | authors | model` and `seds import authors | pose | model`: interchange with the
sign-language ecosystem (.pose files), the SEDS/CiCo authors' released pkl features (docs/interop.md)
and their model checkpoints (pipeline/commands/model_io.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands.common import EXIT_FAILURES, EXIT_OK, add_params_options, guarded, parse_overrides


def _runtime(args: argparse.Namespace):
    from pipeline.config import load_params

    return load_params(args.params, parse_overrides(args.overrides)).runtime


def export_pose(args: argparse.Namespace) -> int:
    from pipeline.interop.pose_format import to_pose, write_pose
    from pipeline.interop.store_export import file_names
    from pipeline.interop.views import open_view
    from pipeline.keypoints.layout import NUM_KEYPOINTS, selection_of_parts
    from pipeline.store.layout import StoreError

    runtime = _runtime(args)
    items = open_view(args.view, Path(runtime.manifests), Path(runtime.store))
    rows = items.ok_rows(args.sample)
    names = file_names(rows, args.name_column, items.path)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for row, name in zip(rows, names):
        arrays, attrs = items.read(row), items.attrs(row)
        if "keypoints" not in arrays or "frames" not in arrays:
            raise StoreError(f"{items.path}: {items.stage} items hold {sorted(arrays)}, not keypoints and frames")
        chosen = None if arrays["keypoints"].shape[1] == NUM_KEYPOINTS else selection_of_parts(attrs.get("parts", []))
        if not row.get("fps"):
            raise StoreError(
                f"{items.path}: sample {row['sample_id']} has no fps column (the probe's); export a "
                "view built on the probe view"
            )
        width, height = attrs.get("width") or row.get("width"), attrs.get("height") or row.get("height")
        pose = to_pose(
            arrays["keypoints"], arrays["scores"], arrays["frames"], row["fps"], width or 0, height or 0, chosen
        )
        write_pose(out / f"{name}.pose", pose)
    print(f"export pose: {len(rows)} clip(s) of {items.path} -> {out}/", flush=True)
    return EXIT_OK


def export_authors(args: argparse.Namespace) -> int:
    from pipeline.interop.store_export import export_authors as run
    from pipeline.interop.views import open_view

    runtime = _runtime(args)
    items = open_view(args.view, Path(runtime.manifests), Path(runtime.store))
    written = run(items, Path(args.out), name_column=args.name_column, samples=args.sample, frame_base=args.frame_base)
    print(f"export authors: {len(written)} pkl file(s) of {items.path} -> {args.out}/", flush=True)
    return EXIT_OK


def import_authors(args: argparse.Namespace) -> int:
    from pipeline.interop.store_import import WindowRule
    from pipeline.interop.store_import import import_authors as run

    runtime = _runtime(args)
    view = Path(args.view) if args.view else Path(runtime.manifests) / "probe.parquet"
    summary = run(
        args.kind,
        Path(args.folder),
        view,
        Path(args.out_manifests),
        Path(runtime.store),
        args.source,
        name_column=args.name_column,
        frame_base=args.frame_base,
        frame_size=tuple(args.frame_size) if args.frame_size else None,
        rule=WindowRule(args.window, args.stride, args.max_frames, args.num_windows),
        compression=runtime.compression,
    )
    _report(summary)
    return EXIT_FAILURES if summary.failed else EXIT_OK


def import_pose(args: argparse.Namespace) -> int:
    from pipeline.interop.pose_import import import_pose_files

    runtime = _runtime(args)
    manifests = Path(runtime.manifests)
    summary = import_pose_files(
        Path(args.folder),
        Path(args.view) if args.view else manifests / "probe.parquet",
        Path(args.out_manifests) if args.out_manifests else manifests,
        Path(runtime.store),
        args.source,
        name_column=args.name_column,
        frame_size=tuple(args.frame_size) if args.frame_size else None,
        compression=runtime.compression,
    )
    _report(summary)
    return EXIT_FAILURES if summary.failed else EXIT_OK


def _report(summary) -> None:
    for error in summary.errors[:20]:
        print(f"  {error}", file=sys.stderr)
    print(summary.line(), flush=True)


def _view_options(p: argparse.ArgumentParser, what: str) -> None:
    add_params_options(p)
    p.add_argument("--view", required=True, help=f"{what}: a view name in runtime.manifests or a .parquet path")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument(
        "--sample", action="append", metavar="SAMPLE_ID", help="only these samples (repeatable; default all ok)"
    )
    p.add_argument("--name-column", default="sample_id", help="view column naming each file (default: %(default)s)")


def register(subparsers) -> None:
    export = subparsers.add_parser("export", help="write our items as .pose files or the authors' pkl layout")
    sub = export.add_subparsers(dest="export_command", required=True)
    pose = sub.add_parser(
        "pose",
        help="keypoints of clips as .pose files (pose-format)",
        description="Write each clip of a pose, gt_keypoints or select view as <name>.pose: one "
        "component per part with COCO-WholeBody point names and links, XYC float32, "
        "the probe's fps; frame i is clip frame i, unsampled frames are empty.",
    )
    _view_options(pose, "the keypoints view (pose, gt_keypoints or select)")
    pose.set_defaults(func=guarded(export_pose))

    authors = sub.add_parser(
        "authors",
        help="rgb or pose items as the SEDS/CiCo authors' per-video pkl files",
        description="rgb view -> <name>.pkl {name, feature (N, 1024) float32}; pose or "
        "gt_keypoints view -> <name>.pkl {keypoints (T, 133, 3), img_list}.",
    )
    _view_options(authors, "an rgb view, or a pose / gt_keypoints view")
    authors.add_argument(
        "--frame-base",
        type=int,
        default=1,
        help="number of clip frame 0 in img_list names (default: %(default)s, images0001.png)",
    )
    authors.set_defaults(func=guarded(export_authors))

    imp = subparsers.add_parser("import", help="bring outside features or keypoints into the store")
    isub = imp.add_subparsers(dest="import_command", required=True)
    a = isub.add_parser(
        "authors",
        help="the SEDS/CiCo authors' per-video pkl files (restricted unpickler)",
        description="Import FOLDER/<name>.pkl for every row of --view into the store as rgb "
        "(feature (N, 1024)) or pose (keypoints (T, 133, 3), img_list) items under a "
        "fingerprint naming --source, and write OUT_VIEWS/<kind>.parquet for train "
        "(train.rgb_views) or select (runtime.manifests). Pickles are read admitting only "
        "numpy arrays of plain dtypes, lists, dicts, strings and numbers; a refused, "
        "malformed or missing file is a recorded failure naming it (exit 1).",
    )
    add_params_options(a)
    a.add_argument("kind", choices=("rgb", "pose"), help="what the files hold")
    a.add_argument("folder", help="folder of <name>.pkl files")
    a.add_argument("--source", required=True, help="name of the release (e.g. seds-how2sign); enters the fingerprint")
    a.add_argument(
        "--view",
        help="view whose rows name the clips (default: <runtime.manifests>/probe.parquet; the "
        "manifest view also works)",
    )
    a.add_argument(
        "--out-manifests", default="manifests/authors", help="folder for the imported view (default: %(default)s)"
    )
    a.add_argument(
        "--name-column", default="sample_id", help="view column giving each file's name (default: %(default)s)"
    )
    a.add_argument(
        "--frame-base", type=int, default=1, help="pose: img_list number of clip frame 0 (default: %(default)s)"
    )
    a.add_argument(
        "--frame-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="pose: frame size in pixels (default: the view's width/height columns)",
    )
    a.add_argument("--window", type=int, default=16, help="rgb: frames per window (default: %(default)s)")
    a.add_argument("--stride", type=int, default=1, help="rgb: window stride (default: %(default)s)")
    a.add_argument(
        "--max-frames", type=int, default=300, help="rgb: clip thinned to this many frames (default: %(default)s)"
    )
    a.add_argument("--num-windows", type=int, default=64, help="rgb: windows kept (default: %(default)s)")
    a.set_defaults(func=guarded(import_authors))

    p = isub.add_parser(
        "pose",
        help="keypoints of .pose files (pose-format) as the pose_file stage select reads",
        description="Import FOLDER/<name>.pose for every row of --view into the store as pose_file "
        "items (keypoints (T, 133, 2), scores, frames, as the pose stage writes) under a "
        "fingerprint naming --source, and write OUT_MANIFESTS/pose_file.parquet; then "
        "select.source=pose_file trains on them. COCO-WholeBody 133 files map one to one, "
        "OpenPose (BODY_25 + hands) and MediaPipe Holistic where a point has a "
        "counterpart (the rest are masked); other layouts, unreadable files and files "
        "longer than their clip are recorded failures naming the file (exit 1). "
        "Frame i of a file is clip frame i (docs/interop.md).",
    )
    add_params_options(p)
    p.add_argument("folder", help="folder of <name>.pose files")
    p.add_argument(
        "--source",
        required=True,
        help="name of the pose estimator or release (e.g. mediapipe-0.10); enters the fingerprint",
    )
    p.add_argument(
        "--view",
        help="view whose rows name the clips (default: <runtime.manifests>/probe.parquet, whose fps "
        "and num_frames place the frames; the manifest view also works)",
    )
    p.add_argument(
        "--out-manifests", help="folder for pose_file.parquet (default: runtime.manifests, where select looks)"
    )
    p.add_argument(
        "--name-column", default="sample_id", help="view column giving each file's name (default: %(default)s)"
    )
    p.add_argument(
        "--frame-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="frame size in pixels the coordinates live in (default: the file's dimensions, else the "
        "view's width/height columns)",
    )
    p.set_defaults(func=guarded(import_pose))

    from pipeline.commands.model_io import register as register_model

    register_model(sub, isub)
