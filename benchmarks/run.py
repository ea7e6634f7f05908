"""Every side-by-side CPU benchmark in one run, on this machine: one JSON and one Markdown table.

    python benchmarks/run.py [--quick] [--only NAME ...] [--results benchmarks/results]

Runs, each in its own process (so memory and thread settings do not leak between them):
- pose:   the pose stage vs mmpose's model + test pipeline one frame per call, rtmpose-m 256x192 and the
          paper's rtmpose-l 384x288 (benchmarks/pose_bench.py)
- rgb:    the rgb stage vs decode-once + a forward per window (the headline), vs per-window decode +
          forward (the straw baseline), and vs decode only (benchmarks/rgb_bench.py)
- store:  shuffled DataLoader reads (page cache warm and dropped) and size vs one .npy per array per
          clip at equal dtypes (store_bench.py);
          shard writes through the disk-full-safe file object vs HDF5's own driver (store_write_bench.py)
- select: vectorised SEDS normalisation vs the authors' per-frame loop, outputs checked equal (select_bench.py)
- load:   20,000 manifest rows through probe and select: peak RSS per process, index open time (load_bench.py)
- repro:  full sample `dvc repro`, a no-op one, and 5% more clips (repro_bench.py)
- h2s-scale: How2Sign's cardinality (1k, 10k, 35,263 clips, its splits and sentence groups): time per item,
          peak RSS, planning, index and view sizes, no-op `seds run` and `dvc repro`, 1% more clips, and the
          trainer's read path over a 35k-item store vs .npy (how2sign_scale_bench.py)
- h2s-clip: one How2Sign-like clip (1280x720, 7 s) through the How2Sign profile's probe, pose + rgb and
          select: seconds, peak RSS and bytes stored per clip, and what 35,263 clips imply (how2sign_clip_cost.py)
- setup:  the first `make`: scripts/setup.sh into a fresh venv with empty package caches (setup_bench.py)
- decoders: decord vs PyAV (and torchcodec where it imports) as the stages decode (decoder_bench.py)
- host-cost: host core-seconds per 1280x720 clip by phase, pose and rgb separately vs one decode, and the
          16-core ceiling and How2Sign hours they imply (host_cost.py; models are tiny random stand-ins)
and writes benchmarks/results/<machine>.json (every benchmark's raw figures) and <machine>.md (the
table: ours, baseline, ours / baseline, which way is better). Every row carries the date, the commit
(`-dirty` when the working tree had changes) and the machine of the run that measured it; `--only`
keeps the other benchmarks' rows from this machine's last file with their own date and commit, and
the table's header says when its rows come from more than one run. `--quick` shrinks every size for
a smoke run and writes <machine>-quick.* (its figures are not the ones to quote). The GPU subset is
benchmarks/gpu.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Row:
    benchmark: str
    measure: str
    ours: float
    baseline: float | None
    unit: str
    better: str  # "higher" or "lower"
    note: str = ""
    date: str = ""  # when the run.py run that measured it started (from the benchmark's raw record)
    commit: str = ""
    machine: str = ""

    @property
    def ratio(self) -> float | None:
        return self.ours / self.baseline if self.baseline else None


@dataclass(frozen=True)
class Benchmark:
    name: str
    args: Callable[[Path, bool], list[str]]  # (json output path, quick) -> command-line arguments
    rows: Callable[[dict], list[Row]]


def _pose_rows(r: dict) -> list[Row]:
    rows = []
    for m in r["models"]:
        naive, native, stage = m["rows"]
        spread = ", ".join(f"{x['key']} {x['fps_min']:.3g}..{x['fps_max']:.3g}" for x in (naive, native, stage))
        note = (
            f"{m['label']}, {m['frames']} frames, random weights, flip test, {r['threads']} threads, "
            f"decode ahead for all; median of {r['repeats']} (frames/s {spread})"
        )
        rows += [
            Row(
                "pose",
                f"{m['label']}: stage vs naive mmpose per frame",
                stage["fps"],
                naive["fps"],
                "frames/s",
                "higher",
                note,
            ),
            Row(
                "pose",
                f"{m['label']}: native backend per frame vs naive",
                native["fps"],
                naive["fps"],
                "frames/s",
                "higher",
                note,
            ),
            Row(
                "pose",
                f"{m['label']}: stage vs naive, CPU time of the benchmark process",
                stage["cpu_ms_per_frame"],
                naive["cpu_ms_per_frame"],
                "ms/frame",
                "lower",
                "decoder child left out in both",
            ),
        ]
    return rows


def _rgb_rows(r: dict) -> list[Row]:
    s = r["settings"]
    note = f"{r['clips']} clips, {s['size']} px, window {s['window']}, {s['num_windows']} windows"
    return [
        Row(
            "rgb",
            "stage vs careful loop (clip decoded once, a forward per window)",
            r["stage_clips_per_s"],
            r["careful_clips_per_s"],
            "clips/s",
            "higher",
            note,
        ),
        Row(
            "rgb",
            "stage vs naive loop (decode + forward per window; straw baseline)",
            r["stage_clips_per_s"],
            r["naive_clips_per_s"],
            "clips/s",
            "higher",
            note,
        ),
        Row(
            "rgb",
            "stage vs decode only",
            r["stage_clips_per_s"],
            r["decode_clips_per_s"],
            "clips/s",
            "higher",
            "1.0 = decode-bound",
        ),
    ]


def _store_rows(r: dict) -> list[Row]:
    mib = 2**20

    def read_row(condition: str, label: str) -> Row:
        m = r[condition]
        spread = f"store/npy per round {m['ratio']['min']:.2f}..{m['ratio']['max']:.2f}"
        return Row(
            "store",
            f"random-access read, {label}, vs .npy per array",
            m["store"]["median"],
            m["npy"]["median"],
            "clips/s",
            "higher",
            f"median of {r['repeats']}; {spread}; {r['clips']} clips, {r['workers']} DataLoader workers",
        )

    return [
        read_row("warm", "page cache warm"),
        read_row("cold", "page cache dropped"),
        Row(
            "store",
            "size vs .npy per array, equal dtypes",
            r["store_bytes"] / mib,
            r["npy_bytes"] / mib,
            "MiB",
            "lower",
            f"allocated {r['store_allocated_bytes'] / mib:.1f} vs {r['npy_allocated_bytes'] / mib:.1f} "
            f"MiB; {r['store_files']} vs {r['npy_files']} files; index {r['store_index_bytes'] / 1024:.0f} KiB",
        ),
    ]


def _store_write_rows(r: dict) -> list[Row]:
    return [
        Row(
            "store",
            "write: disk-full-safe file object vs HDF5's sec2 driver",
            r["shardfile_items_per_s"],
            r["sec2_items_per_s"],
            "clips/s",
            "higher",
            f"{r['clips']} clips, lzf, fsync per shard",
        )
    ]


def _select_rows(r: dict) -> list[Row]:
    return [
        Row(
            "select",
            "vectorised vs per-frame loop",
            r["vectorised_clips_per_s"],
            r["per_frame_clips_per_s"],
            "clips/s",
            "higher",
            f"{r['clips']} clips x {r['frames']} frames; outputs agree to {r['max_difference']:.1g}",
        )
    ]


def _load_rows(r: dict) -> list[Row]:
    rows, peak = r["rows"], r["peak_rss_mib"]
    return [
        Row(
            "load",
            f"{rows} rows: peak RSS of the probe runner process",
            peak["probe_runner"],
            None,
            "MiB",
            "lower",
            f"its decoder child {peak['probe_decoder_child']} MiB",
        ),
        Row(
            "load",
            f"{rows} rows: peak RSS of the select runner process",
            peak["select_runner"],
            None,
            "MiB",
            "lower",
            f"gt_keypoints runner {peak['gt_keypoints_runner']} MiB",
        ),
        Row("load", f"{rows} rows: probe index open", r["index_open_s"], None, "s", "lower"),
        Row(
            "load",
            f"{rows} rows: probe vs naive in-process decode",
            r["probe_items_per_s"],
            r["naive_items_per_s"],
            "items/s",
            "higher",
            "naive: no store, no child, 500 rows",
        ),
        Row(
            "load",
            f"{rows} rows: select",
            r["select_items_per_s"],
            None,
            "items/s",
            "higher",
            f"index opens in {r['select_index_open_s']} s",
        ),
    ]


def _repro_rows(r: dict) -> list[Row]:
    grown = r["grown_stages"]
    computed = ", ".join(f"{k} {v['computed']}/{v['items']}" for k, v in grown.items())
    return [
        Row("repro", f"full sample dvc repro ({r['sentences'] * 4} clips)", r["full_s"], None, "s", "lower"),
        Row("repro", "no-op dvc repro vs full", r["noop_s"], r["full_s"], "s", "lower"),
        Row(
            "repro",
            f"+{r['grown_sentences'] - r['sentences']} sentences "
            f"({100 * (r['grown_sentences'] / r['sentences'] - 1):.0f}% more clips) vs full",
            r["grown_s"],
            r["full_s"],
            "s",
            "lower",
            f"computed: {computed}; train+evaluate rerun in full",
        ),
    ]


def _scale_rows(r: dict) -> list[Row]:
    """Each size's time per item beside the smallest size's (goal: within 1.2x), and the 35k goals."""
    sizes = r["sizes"]
    small, rows = sizes[0], []
    for big in sizes[1:]:
        for stage in ("probe", "gt_keypoints", "select"):
            rows.append(
                Row(
                    "h2s-scale",
                    f"{stage}: ms per item at {big['size']} vs {small['size']} clips",
                    big["stages"][stage]["per_item_ms"],
                    small["stages"][stage]["per_item_ms"],
                    "ms/item",
                    "lower",
                    "goal: ratio <= 1.2",
                )
            )
    for one in sizes:
        n, stages = one["size"], one["stages"]
        peak = max(
            [st["peak_rss_mib"] for st in stages.values() if "peak_rss_mib" in st]
            + [c for st in stages.values() for c in st.get("children_peak_rss_mib", [])]
        )
        plan = max(p["plan_s"] + p["reuse_check_s"] for p in one["planning"].values())
        grown = one["grow"]["stages"]
        computed = ", ".join(f"{k} {v.get('computed')}/{v.get('items')}" for k, v in grown.items() if "items" in v)
        rows += [
            Row(
                "h2s-scale",
                f"{n} clips: no-op dvc repro select",
                min(one["dvc"]["noop_repro_s"]),
                None,
                "s",
                "lower",
                "goal at 35k: < 10 s",
            ),
            Row(
                "h2s-scale",
                f"{n} clips: planning, slowest stage (plan + reuse check)",
                plan,
                None,
                "s",
                "lower",
                "goal at 35k: < 5 s",
            ),
            Row("h2s-scale", f"{n} clips: peak RSS of any process", peak, None, "MiB", "lower", "goal: < 2048"),
            Row(
                "h2s-scale",
                f"{n} clips: no-op seds run pose rgb vs full probe",
                stages["pose+rgb reuse"]["seconds"],
                stages["probe"]["seconds"],
                "s",
                "lower",
                "every item stored: plan, reuse, views",
            ),
            Row(
                "h2s-scale",
                f"{n} clips: +{one['grow']['new_clips']} clips (1%), probe vs full probe",
                grown["probe"]["seconds"],
                stages["probe"]["seconds"],
                "s",
                "lower",
                f"computed: {computed}",
            ),
        ]
    if "loader" in r:
        m = r["loader"]
        for condition, label in (("warm", "page cache warm"), ("cold", "page cache dropped")):
            rows.append(
                Row(
                    "h2s-scale",
                    f"read path over {r['loader']['clips']} items, {label}, vs .npy per array",
                    m[condition]["store"]["median"],
                    m[condition]["npy"]["median"],
                    "clips/s",
                    "higher",
                    f"median of {m['repeats']}",
                )
            )
    return rows


def _clip_cost_rows(r: dict) -> list[Row]:
    note = f"{r['clips']} clips of {r['clip']}, {r['cpus']} cores, random weights at the real sizes, batch_size auto"
    rows = [
        Row(
            "h2s-clip",
            f"{stage}: seconds per clip",
            s["seconds_per_clip"],
            None,
            "s",
            "lower",
            f"peak RSS {s['peak_rss_mib']:.0f} MiB (children {s['children_peak_rss_mib']} MiB); {note}",
        )
        for stage, s in r["stages"].items()
    ]
    rows.append(
        Row(
            "h2s-clip",
            "bytes stored per clip (probe, pose, rgb, select)",
            sum(r["bytes_per_clip"].values()) / 2**20,
            None,
            "MiB",
            "lower",
            f"How2Sign's 35,263 clips: {r['how2sign_store_gib']} GiB, {r['how2sign_cpu_hours']} h on these cores",
        )
    )
    return rows


def _setup_rows(r: dict) -> list[Row]:
    return [
        Row(
            "setup",
            "scripts/setup.sh, fresh venv, empty caches",
            r["seconds"],
            None,
            "s",
            "lower",
            f"venv {r['venv_bytes'] / 2**30:.1f} GiB, {r['cpu_seconds']:.0f} CPU-s; load {r['load_average_1min']}",
        )
    ]


def _decoder_rows(r: dict) -> list[Row]:
    rows = []
    for pattern, rates in r["frames_per_s"].items():
        for other in ("pyav", "torchcodec"):
            if other in rates:
                rows.append(
                    Row(
                        "decoders",
                        f"{pattern}: decord vs {other}",
                        rates["decord"],
                        rates[other],
                        "frames/s",
                        "higher",
                        f"{r['clips']} clips {r['resolution']}, {r['frames_per_clip']} frames, "
                        f"median of {r['repeats']}, one thread",
                    )
                )
    return rows


def _host_cost_rows(r: dict) -> list[Row]:
    one, separate, ratio = r["one decode"], r["separate"], r["ratio"]
    note = (
        f"{r['clips']} clips of {r['seconds_per_clip']:.0f} s, {r['resolution']} {r['fps']} fps, median of "
        f"{r['repeats']}; process CPU time; model phase excluded (tiny random stand-ins)"
    )
    return [
        Row(
            "host-cost",
            "host core-s per clip: one decode vs separate pose + rgb",
            one["host"]["median"],
            separate["host"]["median"],
            "core-s/clip",
            "lower",
            f"ratio {ratio['min']:.2f}..{ratio['max']:.2f} over repeats (goal <= 0.55); {note}",
        ),
        Row(
            "host-cost",
            "16-core ceiling if the GPU cost nothing: one decode vs separate",
            one["ceiling_clips_per_s"],
            separate["ceiling_clips_per_s"],
            "clips/s",
            "higher",
            f"How2Sign at that ceiling: {one['how2sign_hours']:.2f} h vs {separate['how2sign_hours']:.2f} h",
        ),
    ]


def _script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / name), *args]


BENCHMARKS = [
    Benchmark(
        "store",
        lambda out, q: _script(
            "store_bench.py",
            "--clips",
            "200" if q else "2000",
            "--workers",
            "2",
            "--repeats",
            "2" if q else "5",
            "--out",
            str(out),
        ),
        _store_rows,
    ),
    Benchmark(
        "store-write",
        lambda out, q: _script("store_write_bench.py", "--clips", "100" if q else "500", "--out", str(out)),
        _store_write_rows,
    ),
    Benchmark(
        "select",
        lambda out, q: _script("select_bench.py", "--clips", "20" if q else "200", "--out", str(out)),
        _select_rows,
    ),
    Benchmark(
        "pose",
        lambda out, q: _script(
            "pose_bench.py",
            "--frames-per-clip",
            "4" if q else "24",
            "--repeats",
            "1" if q else "3",
            "--out",
            str(out.parent),
        ),
        _pose_rows,
    ),
    Benchmark(
        "rgb", lambda out, q: _script("rgb_bench.py", "--sentences", "2" if q else "10", "--out", str(out)), _rgb_rows
    ),
    Benchmark(
        "load",
        lambda out, q: _script("load_bench.py", "--rows", "2000" if q else "20000", "--out", str(out)),
        _load_rows,
    ),
    Benchmark(
        "repro",
        lambda out, q: _script("repro_bench.py", "--sentences", "5" if q else "40", "--out", str(out)),
        _repro_rows,
    ),
    Benchmark(
        "h2s-scale",
        lambda out, q: _script(
            "how2sign_scale_bench.py",
            "--sizes",
            *(["300", "1000"] if q else ["1000", "10000", "35263"]),
            "--loader-clips",
            "2000" if q else "35263",
            "--out",
            str(out),
        ),
        _scale_rows,
    ),
    Benchmark(
        "h2s-clip",
        lambda out, q: _script("how2sign_clip_cost.py", "--clips", "1" if q else "3", "--out", str(out)),
        _clip_cost_rows,
    ),
    Benchmark("setup", lambda out, q: _script("setup_bench.py", "--out", str(out)), _setup_rows),
    Benchmark(
        "decoders",
        lambda out, q: _script(
            "decoder_bench.py", "--clips", "1" if q else "4", "--repeats", "1" if q else "3", "--out", str(out)
        ),
        _decoder_rows,
    ),
    Benchmark(
        "host-cost",
        lambda out, q: _script(
            "host_cost.py", *(["--quick"] if q else ["--clips", "4", "--repeats", "5"]), "--out", str(out)
        ),
        _host_cost_rows,
    ),
]
OUTPUT_NAMES = {"pose": "pose_bench.json"}  # benchmarks that name their own file inside a folder


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    slug = re.sub(r"[^a-z0-9]+", "-", f"{platform.system()}-{cores}cpu-{cpu}".lower()).strip("-")[:80]
    return {
        "name": slug,
        "cpu": cpu,
        "cores": cores,
        "memory_gib": round(memory_gib, 1),
        "gpu": "none (CPU run)",
        "python": platform.python_version(),
        "load_before": os.getloadavg()[0],
    }


def commit() -> str:
    """The checkout's commit, `-dirty` when tracked files differ from it ('unknown' outside git)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return git("rev-parse", "--short=12", "HEAD") + (
            "-dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _stamped(bench: Benchmark, record: dict) -> list[Row]:
    """The benchmark's rows, each with the date, commit and machine of the run that measured it."""
    return [
        replace(
            row,
            date=record.get("date", "unknown"),
            commit=record.get("commit", "unknown"),
            machine=record.get("machine", "unknown"),
        )
        for row in bench.rows(record)
    ]


def markdown(rows: list[Row], host: dict, quick: bool) -> str:
    runs = sorted({(r.date, r.commit) for r in rows})
    provenance = (
        f"All rows from one run: {runs[0][0]}, commit {runs[0][1]}, machine {host['name']}."
        if len(runs) == 1
        else f"Rows from {len(runs)} runs on machine {host['name']} (see each row's run): "
        + "; ".join(f"{d}, commit {c}" for d, c in runs)
        + "."
    )
    lines = [
        f"# Benchmarks on {host['cpu']} ({host['cores']} cores, {host['memory_gib']} GiB, {host['gpu']})",
        "",
        provenance,
        "",
        "ours / baseline: above 1 is better where higher is better, below 1 where lower is better."
        + (" QUICK RUN: small sizes, not figures to quote." if quick else ""),
        "",
        "| benchmark | measure | ours | baseline | unit | ours / baseline | better | notes | run |",
        "|---|---|---:|---:|---|---:|---|---|---|",
    ]
    for r in rows:
        baseline = f"{r.baseline:.4g}" if r.baseline is not None else "-"
        ratio = f"{r.ratio:.3g}" if r.ratio is not None else "-"
        lines.append(
            f"| {r.benchmark} | {r.measure} | {r.ours:.4g} | {baseline} | {r.unit} | {ratio} | {r.better} | "
            f"{r.note} | {r.date}, {r.commit} |"
        )
    return "\n".join(lines) + "\n"


def _earlier(path: Path, machine: str) -> dict:
    """The raw figures of an earlier run on this machine, kept for the benchmarks `--only` leaves out
    (each with the date and commit it was measured at)."""
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())["raw"]
    return {name: {"commit": "unknown", "machine": machine, **record} for name, record in raw.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures to quote")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[b.name for b in BENCHMARKS],
        help="run only these; the others' rows are kept from this machine's last results file, "
        "each with its own date and commit (the table says when rows come from several runs)",
    )
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args()
    host = machine()
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    stem = host["name"] + ("-quick" if args.quick else "")
    raw, failed = _earlier(args.results / f"{stem}.json", host["name"]) if args.only else {}, []
    revision, started = commit(), time.strftime("%Y-%m-%d %H:%M:%S %Z")  # one date for every row of this run
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for bench in chosen:
            out = Path(tmp) / bench.name / f"{bench.name}.json"
            out.parent.mkdir()
            print(f"== {bench.name}", flush=True)
            start = time.perf_counter()
            done = subprocess.run(bench.args(out, args.quick), cwd=HERE.parent)
            seconds = time.perf_counter() - start
            result_file = out.parent / OUTPUT_NAMES.get(bench.name, out.name)
            if done.returncode != 0 or not result_file.is_file():
                failed.append(bench.name)
                raw.pop(bench.name, None)  # an earlier figure would pass for this run's
                print(f"== {bench.name} FAILED (exit {done.returncode})", file=sys.stderr, flush=True)
                continue
            raw[bench.name] = {
                **json.loads(result_file.read_text()),
                "wall_s": seconds,
                "date": started,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "commit": revision,
                "machine": host["name"],
            }
    rows = []
    for bench in BENCHMARKS:
        if bench.name not in raw:
            continue
        try:
            rows += _stamped(bench, raw[bench.name])
        except KeyError as err:  # kept from a run of an older version of that benchmark
            print(
                f"== {bench.name}: the kept figures of {raw.pop(bench.name).get('date', 'an earlier run')} "
                f"lack {err}: left out; "
                f"rerun it (--only {bench.name})",
                file=sys.stderr,
                flush=True,
            )
    args.results.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": host,
        "quick": args.quick,
        "date": started,
        "commit": revision,
        "failed": failed,
        "rows": [{**r.__dict__, "ratio": r.ratio} for r in rows],
        "raw": raw,
    }
    (args.results / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    table = markdown(rows, host, args.quick)
    (args.results / f"{stem}.md").write_text(table)
    print(table)
    print(f"wrote {args.results / stem}.json and .md" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
