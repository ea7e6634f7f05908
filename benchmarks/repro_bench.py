"""`dvc repro` of the sample in a fresh clone: the full run, a no-op rerun, and the cost of 5% more clips.

    python benchmarks/repro_bench.py [--sentences 40] [--grow 0.05] [--out results.json]

One clip folder, three timings, each a real `dvc repro` of the whole graph with the project's own
params.yaml (the sample profile; `--sentences` scales it):
- full: every stage from nothing;
- no-op: nothing changed, so DVC checks its hashes and runs no stage;
- grown: `sample.sentences` raised by `--grow` (5%: 40 -> 42 sentences, 160 -> 168 clips). The sample
  stage renders the dataset again (existing clips come out byte-identical), the item stages compute
  only the new clips and reuse the rest, and train/evaluate rerun in full, since their input changed.
The ratio grown / full is the incremental cost; the item stages' computed/reused counts and the full
run's retrieval metrics are recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.scratch import fresh_clone  # noqa: E402

SUMMARY = re.compile(r"^(\w+): (\d+) items: (\d+) computed, (\d+) reused.*? in ([\d.]+) s", re.M)


def repro(project: Path) -> tuple[float, str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    start = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "repro"], cwd=project, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dvc repro failed in {project}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def item_stages(output: str) -> dict[str, dict]:
    return {
        m[1]: {"items": int(m[2]), "computed": int(m[3]), "reused": int(m[4]), "seconds": float(m[5])}
        for m in SUMMARY.finditer(output)
    }


def set_sentences(project: Path, sentences: int) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["sample"]["sentences"] = sentences
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(sentences: int = 40, grow: float = 0.05, work: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="repro-bench-", dir=work) as tmp:
        project = fresh_clone(Path(tmp) / "clone")
        set_sentences(project, sentences)
        full_s, full_out = repro(project)
        metrics = json.loads((project / "runs/evaluate/metrics.json").read_text())
        noop_s, noop_out = repro(project)
        if "Running stage" in noop_out:
            raise SystemExit(f"the no-op dvc repro ran stages:\n{noop_out}")
        grown_sentences = sentences + max(1, math.ceil(sentences * grow))
        set_sentences(project, grown_sentences)
        grown_s, grown_out = repro(project)
    return {
        "sentences": sentences,
        "grown_sentences": grown_sentences,
        "full_s": full_s,
        "noop_s": noop_s,
        "grown_s": grown_s,
        "noop_ratio": noop_s / full_s,
        "grown_ratio": grown_s / full_s,
        "full_stages": item_stages(full_out),
        "grown_stages": item_stages(grown_out),
        "full_metrics": {k: metrics[k] for k in ("split", "clips", "chance_R@1", "t2v", "v2t")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=40, help="sample.sentences of the full run (x4 clips)")
    parser.add_argument("--grow", type=float, default=0.05, help="fraction of sentences added for the grown run")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    result = run(args.sentences, args.grow)
    print(
        f"full dvc repro ({args.sentences} sentences): {result['full_s']:.1f} s; no-op: {result['noop_s']:.1f} s "
        f"({result['noop_ratio']:.3f} of full); +{result['grown_sentences'] - args.sentences} sentences: "
        f"{result['grown_s']:.1f} s ({result['grown_ratio']:.2f} of full)"
    )
    m = result["full_metrics"]
    print(
        f"  full run's {m['split']} retrieval ({m['clips']} clips, chance R@1 {m['chance_R@1']:.1f}%): "
        f"T2V R@1 {m['t2v']['R@1']:.1f}, V2T R@1 {m['v2t']['R@1']:.1f}"
    )
    for stage, counts in result["grown_stages"].items():
        print(
            f"  grown run, {stage}: {counts['computed']} computed, {counts['reused']} reused "
            f"in {counts['seconds']:.1f} s"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
