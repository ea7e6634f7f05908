"""The built-in sample dataset: synthetic signing clips in a real dataset's own files (How2Sign's H.264
clips and CSVs by default; PHOENIX-2014T's or CSL-Daily's frame folders and annotation files, see
pipeline/sample/layouts.py), and the ground-truth 133-keypoint trajectories, all from one seed (same
params -> same files).

Each sentence is a gloss sequence rendered several times by different "signers" (placement, size,
speed, colours, jitter); render r goes to split `splits[r]`, so every split holds every sentence once
per render assigned to it and retrieval within a split is among distinct sentences.

Layout under `out` (`layout: how2sign`; the others: pipeline/sample/layouts.py):
    sentence_clips/<SENTENCE_NAME>.mp4
    how2sign_sample_<split>.csv        TAB-separated, CRLF, How2Sign realigned columns
    keypoints.h5                       /<clip name>/{keypoints (T,133,2) px, scores (T,133)}
    SAMPLE.json                        the params and counts that made it
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline.config import ParamError, knob
from pipeline.sample.figure import Signer, body_keypoints, draw
from pipeline.sample.glosses import GLOSSES, Pose, blend, rest_pose
from pipeline.sample.layouts import FILES, FRAME_FOLDER_SPLITS, LAYOUTS

# Frames a sentence spends outside its glosses at normal speed: a hold of 5 at each end, 4 to return to
# rest, and 3 to move into each gloss (see _render_sentence).
_HOLD_FRAMES, _RETURN_FRAMES, _ENTRY_FRAMES = 5, 4, 3

# How2Sign's sentence clips: 1280x720 at 24 fps, about 7 s on average (the benchmarks' "720p clip").
HOW2SIGN_LIKE = {"width": 1280, "height": 720, "fps": 24, "seconds": 7.0}


@dataclass(frozen=True)
class SampleParams:
    out: str = knob("data/sample", help="folder the sample dataset is written to")
    sentences: int = knob(40, min=2, help="distinct sentences (gloss sequences)")
    renders: list[str] = knob(
        default_factory=lambda: ["train", "train", "val", "test"], help="one split name per rendering of every sentence"
    )
    min_glosses: int = knob(3, min=1, max=8, help="glosses per sentence, at least")
    max_glosses: int = knob(5, min=1, max=8, help="glosses per sentence, at most")
    width: int = knob(320, min=64, help="frame width, pixels (even)")
    height: int = knob(240, min=64, help="frame height, pixels (even)")
    fps: int = knob(25, min=1, help="frames per second")
    gloss_frames: int = knob(16, min=4, help="frames per gloss at normal speed")
    seconds: float | None = knob(
        None,
        min=1.0,
        help="clip length at normal speed, seconds: each sentence's glosses "
        "are stretched to fill it (replaces gloss_frames); null = "
        "gloss_frames decides",
    )
    seed: int = knob(0, help="random seed: the whole dataset is a function of the params")
    layout: str = knob(
        "how2sign",
        choices=LAYOUTS,
        help="the dataset whose files it writes: how2sign (H.264 clips, realigned CSVs), phoenix2014t "
        "(PNG frame folders, PHOENIX-2014-T corpus CSVs) or csl_daily (JPEG frame folders, "
        "split_1.txt and video_map.txt, Chinese sentences); the last two take the splits train, "
        "dev, test",
    )

    def validate(self, prefix: str) -> None:
        if self.layout != "how2sign" and not set(self.renders) <= set(FRAME_FOLDER_SPLITS):
            raise ParamError(
                f"{prefix}.renders: {self.layout} names its splits {', '.join(FRAME_FOLDER_SPLITS)}; got {self.renders}"
            )


def _render_sentence(
    glosses: list[str], signer: Signer, speed: float, amplitude: float, rng: np.random.Generator, p: SampleParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (T,H,W,3) uint8, keypoints (T,133,2) float32 px, scores (T,133) float32."""
    poses: list[Pose] = []
    rest = rest_pose()
    hold = max(2, round(_HOLD_FRAMES / speed))
    poses += [rest] * hold
    previous = rest
    per_gloss = gloss_frames(len(glosses), p)
    for gloss in glosses:
        fn = GLOSSES[gloss][1]
        n = max(4, round(per_gloss / speed))
        start = fn(0.0)
        poses += [blend(previous, start, (k + 1) / 4) for k in range(_ENTRY_FRAMES)]
        poses += [fn(k / (n - 1)) for k in range(n)]
        previous = poses[-1]
    poses += [blend(previous, rest, (k + 1) / 4) for k in range(_RETURN_FRAMES)] + [rest] * hold
    frames, keypoints, scores = [], [], []
    jitter = rng.normal(0, 0.03, size=(len(poses), 2, 2))
    neck = np.array([signer.center_x, signer.shoulder_y])
    for t, pose in enumerate(poses):
        right = neck + signer.scale * amplitude * (pose.right + jitter[t, 0])
        left = neck + signer.scale * amplitude * (pose.left + jitter[t, 1])
        kp, score = body_keypoints(
            signer, left, right, pose.left_dir, pose.right_dir, pose.left_curl, pose.right_curl, pose.mouth, p.height
        )
        frame = np.empty((p.height, p.width, 3), np.uint8)
        frame[...] = signer.background
        draw(frame, kp, signer)
        frames.append(frame)
        keypoints.append(kp)
        scores.append(score)
    return np.stack(frames), np.stack(keypoints), np.stack(scores)


def gloss_frames(count: int, p: SampleParams) -> float:
    """Frames per gloss at normal speed for a sentence of `count` glosses: `p.gloss_frames`, or what fills
    `p.seconds` (a signer's speed then scales the whole clip, 0.8-1.25x)."""
    if p.seconds is None:
        return float(p.gloss_frames)
    spare = p.seconds * p.fps - 2 * _HOLD_FRAMES - _RETURN_FRAMES - _ENTRY_FRAMES * count
    return max(4.0, spare / count)


def _sentences(rng: np.random.Generator, p: SampleParams) -> list[list[str]]:
    vocab = sorted(GLOSSES)
    seen: set[tuple[str, ...]] = set()
    out = []
    while len(out) < p.sentences:
        length = int(rng.integers(p.min_glosses, p.max_glosses + 1))
        seq = [str(rng.choice(vocab))]
        while len(seq) < length:
            nxt = str(rng.choice(vocab))
            if nxt != seq[-1]:
                seq.append(nxt)
        if tuple(seq) not in seen:
            seen.add(tuple(seq))
            out.append(seq)
    return out


def sentence_text(glosses: list[str]) -> str:
    words = " ".join(GLOSSES[g][0] for g in glosses)
    return words[0].upper() + words[1:] + "."


def _signer(rng: np.random.Generator, p: SampleParams) -> Signer:
    colour = lambda lo, hi: tuple(int(v) for v in rng.integers(lo, hi, size=3))  # noqa: E731
    return Signer(
        center_x=p.width * (0.5 + rng.uniform(-0.08, 0.08)),
        shoulder_y=p.height * (0.45 + rng.uniform(-0.04, 0.04)),
        scale=p.height * 0.13 * rng.uniform(0.88, 1.12),
        skin=colour(150, 255),
        shirt=colour(20, 140),
        background=colour(160, 256),
    )


def generate(p: SampleParams) -> dict:
    if p.min_glosses > p.max_glosses:
        raise ValueError("sample.min_glosses is larger than sample.max_glosses")
    import h5py

    out = Path(p.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = FILES[p.layout](out, p.renders)
    sentences = _sentences(np.random.default_rng(p.seed), p)
    frame_total = 0
    with h5py.File(out / "keypoints.h5", "w") as gt:
        for s, glosses in enumerate(sentences):
            for r, split in enumerate(p.renders):
                # One random stream per clip, so adding sentences leaves the existing clips byte-identical
                # (their store items are then reused, not recomputed).
                rng = np.random.default_rng((p.seed, s, r))
                signer = _signer(rng, p)
                speed, amplitude = rng.uniform(0.8, 1.25), rng.uniform(0.9, 1.1)
                frames, kp, scores = _render_sentence(glosses, signer, speed, amplitude, rng, p)
                name = files.add(s, r, split, glosses, sentence_text(glosses), frames, p.fps)
                group = gt.create_group(name)
                group.create_dataset("keypoints", data=kp)
                group.create_dataset("scores", data=scores)
                group.attrs["glosses"] = " ".join(glosses)
                frame_total += len(frames)
    splits = files.finish()
    summary = {
        "params": asdict(p),
        "clips": sum(splits.values()),
        "frames": frame_total,
        "splits": splits,
        "glosses": sorted(GLOSSES),
    }
    (out / "SAMPLE.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def how2sign_like_clips(folder: Path, count: int, seconds: float = HOW2SIGN_LIKE["seconds"]) -> list[Path]:
    """`count` sample clips rendered How2Sign-like (1280x720, 24 fps, `seconds` long) under `folder`: the
    clips every 720p benchmark measures on (host cost, NVDEC), so their figures describe the same video."""
    params = SampleParams(
        out=str(Path(folder) / "sample"),
        sentences=max(2, count),
        renders=["bench"],
        **{**HOW2SIGN_LIKE, "seconds": seconds},
    )
    generate(params)
    return sorted((Path(folder) / "sample" / "sentence_clips").glob("*.mp4"))[:count]
