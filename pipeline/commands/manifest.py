"""`seds manifest` (annotations -> manifests/manifest.parquet) and `seds manifest add-videos`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.common import EXIT_OK, add_params_options, guarded, parse_overrides


def manifest(args: argparse.Namespace) -> int:
    from pipeline.config import load_params
    from pipeline.manifest.build import build_manifest
    from pipeline.manifest.schema import write_manifest

    params = load_params(args.params, parse_overrides(args.overrides))
    table = build_manifest(params["data"])
    out = Path(params.runtime.manifests) / "manifest.parquet"
    write_manifest(table, out)
    splits = {}
    for split in table.column("split").to_pylist():
        splits[split] = splits.get(split, 0) + 1
    print(
        f"manifest: {table.num_rows} clips -> {out} (" + ", ".join(f"{k} {v}" for k, v in sorted(splits.items())) + ")"
    )
    return EXIT_OK


def add_videos(args: argparse.Namespace) -> int:
    from pipeline.manifest.build import add_videos as link_videos

    added = link_videos(Path(args.root), Path(args.csv), [Path(v) for v in args.videos], args.text, args.split)
    print(
        f"linked {len(added)} video(s) into {args.root}/extra and listed them in {args.csv}; add "
        f"{{format: csv, file: {args.csv}, split: {args.split}}} to data.annotations to use them"
    )
    return EXIT_OK


def register(subparsers) -> None:
    m = subparsers.add_parser(
        "manifest",
        help="build manifests/manifest.parquet from data.annotations",
        description="Import every file of data.annotations (How2Sign, PHOENIX, CSV), validate "
        "each row (file, row and column named on error) and write the manifest.",
    )
    add_params_options(m)
    m.set_defaults(func=guarded(manifest))
    msub = m.add_subparsers(dest="manifest_command")
    a = msub.add_parser("add-videos", help="link videos from anywhere into <root>/extra and list them in a CSV")
    a.add_argument("videos", nargs="+", help="video files to add")
    a.add_argument("--root", default="data/sample", help="data root (default: %(default)s)")
    a.add_argument("--csv", default="data/extra_videos.csv", help="plain manifest CSV to write (default: %(default)s)")
    a.add_argument("--text", default="", help="text for the added clips (default: the file name)")
    a.add_argument("--split", default="extra", help="split name (default: %(default)s)")
    a.set_defaults(func=guarded(add_videos))
