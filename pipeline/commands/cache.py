"""`seds cache verify | stats | gc | failures`: look after the store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.commands.common import (
    EXIT_CANNOT_START,
    EXIT_FAILURES,
    EXIT_OK,
    add_params_options,
    guarded,
    parse_overrides,
)


def _store_root(args: argparse.Namespace) -> Path:
    if args.store:
        return Path(args.store)
    from pipeline.config import load_params

    return Path(load_params(args.params, parse_overrides(args.overrides)).runtime.store)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n}"


def verify(args: argparse.Namespace) -> int:
    from pipeline.store.layout import stage_dirs
    from pipeline.store.maintenance import quarantine, verify_stage

    root = _store_root(args)
    dirs = stage_dirs(root, args.stage)
    if not dirs:
        print(f"cache verify: nothing under {root}" + (f" for stage {args.stage}" if args.stage else ""))
        return EXIT_OK
    bad = 0
    for stage_dir in dirs:
        report = verify_stage(stage_dir)
        state = "ok" if report.ok else f"{len(report.problems)} PROBLEM(S)"
        extra = []
        if report.unreferenced_shards:
            extra.append(f"{len(report.unreferenced_shards)} unreferenced shard(s)")
        if report.temporaries:
            extra.append(f"{len(report.temporaries)} temporary file(s) of unfinished writers")
        if report.recorded_twice:
            extra.append(
                f"{report.recorded_twice} key(s) in two index parts (computed by two tasks at once; "
                "readers use the part first in name order)"
            )
        print(
            f"{stage_dir.stage}/{stage_dir.fingerprint}: {report.items} items {state}"
            + (f" ({'; '.join(extra)})" if extra else "")
        )
        for problem in report.problems:
            print(f"  {problem}")
        bad += not report.ok
        if args.repair and (moved := quarantine(stage_dir, report)):
            print(
                f"  repaired: moved {len(report.bad_shards)} bad shard(s) and their index parts to {moved} "
                f"(reasons in REASON.json); `seds run {stage_dir.stage}` recomputes their items"
            )
    return EXIT_FAILURES if bad else EXIT_OK


def stats(args: argparse.Namespace) -> int:
    from pipeline.store.maintenance import stats as collect

    rows = collect(_store_root(args))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return EXIT_OK
    print(f"{'stage':<14}{'fingerprint':<34}{'items':>8}{'failed':>8}{'shards':>8}{'size':>12}")
    for r in rows:
        print(f"{r.stage:<14}{r.fingerprint:<34}{r.items:>8}{r.failures:>8}{r.shards:>8}{_human(r.bytes):>12}")
    print(
        f"{len({r.stage for r in rows})} stage(s), {len(rows)} fingerprint(s), {sum(r.items for r in rows)} items, "
        f"{_human(sum(r.bytes for r in rows))}"
    )
    return EXIT_OK


def gc(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from pipeline.runner.plan import FINGERPRINTS_META
    from pipeline.store.maintenance import garbage_collect

    root = _store_root(args)
    views = [Path(v) for v in args.views] if args.views else sorted(Path(args.manifests_dir).glob("*.parquet"))
    if not views:
        print(
            f"cache gc: no views found in {args.manifests_dir}; refusing to treat every fingerprint as unreferenced",
            flush=True,
        )
        return EXIT_CANNOT_START
    keep: set[tuple[str, str]] = set()
    for view in views:
        meta = pq.read_schema(view).metadata or {}
        keep.update(json.loads(meta.get(FINGERPRINTS_META, b"{}")).items())
    doomed = garbage_collect(root, keep, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for stage_dir in doomed:
        print(f"{verb} {stage_dir.path}")
    print(f"cache gc: {verb} {len(doomed)} fingerprint(s); kept {len(keep)} referenced by {len(views)} view(s)")
    return EXIT_OK


def failures(args: argparse.Namespace) -> int:
    from pipeline.store.index import StageIndex
    from pipeline.store.layout import stage_dirs

    for stage_dir in stage_dirs(_store_root(args), args.stage):
        index = StageIndex.load(stage_dir)
        for key, failure in sorted(index.failures.items(), key=lambda kv: kv[1].sample_id):
            if failure.item_key is not None and failure.item_key in index:
                continue
            print(
                f"{stage_dir.stage}/{stage_dir.fingerprint[:12]}\t{failure.sample_id}\t{failure.reason}\t{failure.error}"
            )
    return EXIT_OK


def export(args: argparse.Namespace) -> int:
    from pipeline.store.layout import StageDir
    from pipeline.store.transfer import export_tarball, view_keys

    view = Path(args.view or Path(args.manifests_dir) / f"{args.stage}.parquet")
    fingerprint, keys = view_keys(view, args.stage)
    report = export_tarball(StageDir(_store_root(args), args.stage, fingerprint), keys, Path(args.output))
    print(
        f"cache export: {report.copied} {args.stage} item(s) of {view} -> {args.output} "
        f"({_human(Path(args.output).stat().st_size)})"
        + (f"; {len(report.absent)} not in the store" if report.absent else "")
        + (f"; {len(report.rejected)} REJECTED (checksum)" if report.rejected else "")
    )
    for message in report.rejected:
        print(f"  {message}")
    return EXIT_FAILURES if report.rejected or report.absent else EXIT_OK


def import_(args: argparse.Namespace) -> int:
    from pipeline.store.transfer import import_tarball

    reports = import_tarball(Path(args.tarball), _store_root(args))
    bad = 0
    for name, report in reports.items():
        print(
            f"cache import: {name}: {report.copied} copied, {report.already} already present"
            + (f", {len(report.rejected)} REJECTED (checksum)" if report.rejected else "")
        )
        for message in report.rejected:
            print(f"  {message}")
        bad += len(report.rejected)
    return EXIT_FAILURES if bad else EXIT_OK


def register(subparsers) -> None:
    cache = subparsers.add_parser("cache", help="verify, size and prune the feature store")
    sub = cache.add_subparsers(dest="cache_command", required=True)

    def common(p):
        add_params_options(p)
        p.add_argument("--store", help="store root (default: runtime.store of the params file)")

    v = sub.add_parser(
        "verify",
        help="read every item back and check its checksum",
        description="Read every item back, check checksums, bounds and that each shard holds only "
        "what our writer makes. Exit 1 when anything is wrong (also when --repair fixed it).",
    )
    v.add_argument("stage", nargs="?")
    v.add_argument(
        "--repair",
        action="store_true",
        help="move bad shards and their index parts to <stage>/<fingerprint>/quarantine/<time>/ with a "
        "REASON.json (nothing is deleted); the next run recomputes their items",
    )
    common(v)
    v.set_defaults(func=guarded(verify))
    s = sub.add_parser("stats", help="items, bytes, shards per stage and fingerprint")
    s.add_argument("--json", action="store_true")
    common(s)
    s.set_defaults(func=guarded(stats))
    g = sub.add_parser("gc", help="remove fingerprints that no view references")
    g.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    g.add_argument(
        "--manifests-dir", default="manifests", help="views whose fingerprints are kept (default: %(default)s)"
    )
    g.add_argument("--views", nargs="*", help="explicit view files instead of --manifests-dir")
    common(g)
    g.set_defaults(func=guarded(gc))
    e = sub.add_parser(
        "export",
        help="one stage's items for one manifest view, as a single tarball",
        description="Pack the items a view references (default manifests/<stage>.parquet) into one tar "
        "file that `seds cache import` verifies and loads: for sharing without a DVC remote.",
    )
    e.add_argument("stage")
    e.add_argument("-o", "--output", required=True, help="tarball to write")
    e.add_argument("--view", help="view file (default: <manifests-dir>/<stage>.parquet)")
    e.add_argument("--manifests-dir", default="manifests")
    common(e)
    e.set_defaults(func=guarded(export))
    i = sub.add_parser("import", help="load a `seds cache export` tarball, verifying every checksum")
    i.add_argument("tarball")
    common(i)
    i.set_defaults(func=guarded(import_))
    f = sub.add_parser("failures", help="list recorded failures with their reasons")
    f.add_argument("stage", nargs="?")
    common(f)
    f.set_defaults(func=guarded(failures))
