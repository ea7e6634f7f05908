"""`seds` normalisation: the vectorised rules (pipeline.keypoints.normalise) vs the authors' way, frame
by frame in Python (pipeline.keypoints.seds_reference, the restatement the tests check the rules
against). One run each over the same clips; the outputs are checked to agree (kept frames, and every
body and hand coordinate to 1e-3) before clips/s of both and the ratio are printed.

    python benchmarks/select_bench.py [--clips 200] [--frames 300] [--out results.json]

At How2Sign scale (~35k clips of up to 300 frames) the difference is what select costs per epoch of
preprocessing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.keypoints.layout import LEFT_HAND, RIGHT_HAND, Selection, selection  # noqa: E402
from pipeline.keypoints.normalise import SedsRules, seds_normalise  # noqa: E402
from pipeline.keypoints.seds_reference import reference_loader  # noqa: E402

PARTS = {"body": "body", "left": "left_hand", "right": "right_hand"}  # the reference's names -> selection parts


def synthetic_clip(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(T, 133, 3) in a 256 frame: hands mostly well seen, sometimes half seen or lost."""
    clip = np.zeros((frames, 133, 3))
    clip[..., :2] = rng.uniform(0, 255, size=(frames, 133, 2))
    clip[..., 2] = rng.uniform(0.3, 1.0, size=(frames, 133))
    for hand in (LEFT_HAND, RIGHT_HAND):
        centre = rng.uniform(40, 215, size=(frames, 1, 2))
        clip[:, hand.start : hand.stop, :2] = centre + rng.normal(0, 12, size=(frames, 21, 2))
        lost = rng.random(frames) < 0.2
        clip[lost, hand.start : hand.stop, 2] = rng.uniform(0, 0.15, size=(lost.sum(), 21))
    return clip


def disagreement(result, reference: tuple[list[int], dict[str, np.ndarray]], chosen: Selection) -> float:
    """Largest |difference| between the two outputs of one clip; exits when they keep different frames."""
    kept, expected = reference
    if np.flatnonzero(result.kept).tolist() != kept:
        raise SystemExit("the vectorised rules and the authors' loader keep different frames: not comparable")
    got = result.keypoints.astype(np.float64)
    return max(
        float(np.abs(got[:, chosen.columns(part)] - expected[name]).max(initial=0.0)) for name, part in PARTS.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clips = [synthetic_clip(rng, args.frames) for _ in range(args.clips)]
    chosen, rules = selection(), SedsRules()

    start = time.perf_counter()
    ours = [seds_normalise(clip[..., :2], clip[..., 2], chosen, (256, 256), rules) for clip in clips]
    vectorised = time.perf_counter() - start

    start = time.perf_counter()
    theirs = [reference_loader(clip, 256.0, 256.0) for clip in clips]
    per_frame = time.perf_counter() - start
    worst = max(disagreement(result, reference, chosen) for result, reference in zip(ours, theirs))

    print(f"{args.clips} clips x {args.frames} frames, seds normalisation of the SEDS 49:")
    print(f"  per-frame loop (the authors' way): {args.clips / per_frame:8.1f} clips/s ({per_frame:.2f} s)")
    print(f"  vectorised (pipeline.keypoints):   {args.clips / vectorised:8.1f} clips/s ({vectorised:.2f} s)")
    print(f"  ratio: {per_frame / vectorised:.1f}x; outputs agree to {worst:.2g}")
    if worst > 1e-3:
        raise SystemExit(f"the vectorised rules and the authors' loader disagree by {worst:.3g}: not comparable")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "clips": args.clips,
                    "frames": args.frames,
                    "vectorised_clips_per_s": args.clips / vectorised,
                    "per_frame_clips_per_s": args.clips / per_frame,
                    "speedup": per_frame / vectorised,
                    "max_difference": worst,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
