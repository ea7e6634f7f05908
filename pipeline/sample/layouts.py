"""The files the sample renderer writes, laid out as each dataset ships its own, so that the real
importers read them and a sample-sized run goes through a real dataset's profile (`sample.layout`):

- `how2sign`: `sentence_clips/<SENTENCE_NAME>.mp4` (H.264) and `how2sign_sample_<split>.csv` (How2Sign's
  realigned CSV: TAB-separated, CRLF);
- `phoenix2014t`: PNG frame folders `features/fullFrame-210x260px/<split>/<name>/images0001.png`, ... and
  the official corpus files `annotations/manual/PHOENIX-2014-T.<split>.corpus.csv`;
- `csl_daily`: JPEG frame folders `sentence/frames_512x512/<name>/000000.jpg`, ... and the official
  sentence labels `sentence_label/split_1.txt` and `video_map.txt`, the sentences in Chinese.

PHOENIX-2014T and CSL-Daily name their splits train, dev and test, so those layouts take only these.
Each layout renders a clip's frames into its files (`add`) and writes the annotation files at the end
(`finish`); the ground-truth keypoints (keypoints.h5) are the renderer's, the same for every layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.manifest.importers import (
    CSL_SPLIT_COLUMNS,
    CSL_VIDEO_MAP,
    CSL_VIDEO_MAP_COLUMNS,
    HOW2SIGN_COLUMNS,
    PHOENIX_CORPUS_COLUMNS,
    PHOENIX_SPLIT_DIRS,
)

LAYOUTS = ("how2sign", "phoenix2014t", "csl_daily")
FRAME_FOLDER_SPLITS = PHOENIX_SPLIT_DIRS  # CSL-Daily's split_1.txt names the same three

# The sample's glosses in Chinese, so that the CSL-Daily layout's sentences are Chinese, as that dataset's.
CHINESE = {
    "HELLO": "你好",
    "YOU": "你",
    "NAME": "名字",
    "WHAT": "什么",
    "GOOD": "好",
    "MORNING": "早上",
    "THANK-YOU": "谢谢",
    "HOUSE": "房子",
    "RAIN": "下雨",
    "SUN": "太阳",
    "WATER": "水",
    "BOOK": "书",
    "EAT": "吃",
    "WALK": "走路",
    "FRIEND": "朋友",
    "HAPPY": "高兴",
}


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """H.264 (libx264, yuv420p, single-threaded so the bytes are reproducible)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "veryfast", "threads": "1"})
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_how2sign_csv(path: Path, rows: list[list[str]]) -> None:
    """A How2Sign realigned CSV as the dataset ships it: TAB-separated, CRLF, its seven columns in order."""
    with open(path, "w", newline="") as f:
        f.write("\t".join(HOW2SIGN_COLUMNS) + "\r\n")
        for row in rows:
            f.write("\t".join(row) + "\r\n")


def write_frame_folder(folder: Path, frames: np.ndarray, names: list[str]) -> None:
    """Frames (T, H, W, 3) RGB as image files (PNG or JPEG by suffix; JPEG at quality 95)."""
    import cv2

    folder.mkdir(parents=True)
    for frame, name in zip(frames, names):
        options = [cv2.IMWRITE_JPEG_QUALITY, 95] if name.endswith(".jpg") else []
        if not cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), options):
            raise OSError(f"{folder / name}: could not be written")


def _pipe_table(path: Path, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("|".join(row) + "\n" for row in [list(columns), *rows]), encoding="utf-8")


class How2SignFiles:
    """How2Sign's sentence clips and realigned CSVs."""

    def __init__(self, out: Path, renders: list[str]):
        self.out = out
        self.rows: dict[str, list[list[str]]] = {split: [] for split in renders}
        (out / "sentence_clips").mkdir(parents=True)

    def add(
        self, sentence: int, render: int, split: str, glosses: list[str], text: str, frames: np.ndarray, fps: int
    ) -> str:
        video_id = f"sample{sentence:03d}"
        name = f"{video_id}_{render}-1-rgb_front"
        write_mp4(self.out / "sentence_clips" / f"{name}.mp4", frames, fps)
        self.rows[split].append(
            [video_id, f"{video_id}-1-rgb_front", f"{video_id}_{render}", name, "0.0", f"{len(frames) / fps:.2f}", text]
        )
        return name

    def finish(self) -> dict[str, int]:
        for split, rows in self.rows.items():
            write_how2sign_csv(self.out / f"how2sign_sample_{split}.csv", rows)
        return {split: len(rows) for split, rows in self.rows.items()}


class PhoenixFiles:
    """PHOENIX-2014T's frame folders (210x260 PNGs in the dataset; here the sample's frame size) and
    official corpus files. The corpus `video` column reads `<name>/1/*.png`, as the dataset's own."""

    frames_dir = "features/fullFrame-210x260px"

    def __init__(self, out: Path, renders: list[str]):
        self.out = out
        self.rows: dict[str, list[list[str]]] = {split: [] for split in renders}

    def add(
        self, sentence: int, render: int, split: str, glosses: list[str], text: str, frames: np.ndarray, fps: int
    ) -> str:
        name = f"sample{sentence:03d}_{render}"
        write_frame_folder(
            self.out / self.frames_dir / split / name, frames, [f"images{i:04d}.png" for i in range(1, len(frames) + 1)]
        )
        self.rows[split].append(
            [name, f"{name}/1/*.png", "-1", "-1", f"Signer{render + 1:02d}", " ".join(glosses), text]
        )
        return name

    def finish(self) -> dict[str, int]:
        for split, rows in self.rows.items():
            _pipe_table(
                self.out / "annotations/manual" / f"PHOENIX-2014-T.{split}.corpus.csv", PHOENIX_CORPUS_COLUMNS, rows
            )
        return {split: len(rows) for split, rows in self.rows.items()}


class CslDailyFiles:
    """CSL-Daily's frame folders (512x512 JPEGs in the dataset; here the sample's frame size) and
    official sentence labels; a clip is S<sentence>_P<signer>_T00, the sentence in Chinese."""

    frames_dir = "sentence/frames_512x512"

    def __init__(self, out: Path, renders: list[str]):
        self.out = out
        self.splits: list[list[str]] = []
        self.sentences: list[list[str]] = []
        self.counts = {split: 0 for split in renders}

    def add(
        self, sentence: int, render: int, split: str, glosses: list[str], text: str, frames: np.ndarray, fps: int
    ) -> str:
        name = f"S{sentence:06d}_P{render:04d}_T00"
        write_frame_folder(self.out / self.frames_dir / name, frames, [f"{i:06d}.jpg" for i in range(len(frames))])
        words = [CHINESE[g] for g in glosses] + ["。"]
        self.splits.append([name, split])
        self.sentences.append(
            [
                str(len(self.sentences)),
                name,
                str(len(frames)),
                " ".join(words[:-1]),
                " ".join("".join(words)),
                " ".join(words),
                " ".join(["n"] * len(words)),
            ]
        )
        self.counts[split] += 1
        return name

    def finish(self) -> dict[str, int]:
        labels = self.out / "sentence_label"
        _pipe_table(labels / "split_1.txt", CSL_SPLIT_COLUMNS, self.splits)
        _pipe_table(labels / CSL_VIDEO_MAP, CSL_VIDEO_MAP_COLUMNS, self.sentences)
        return dict(self.counts)


FILES = {"how2sign": How2SignFiles, "phoenix2014t": PhoenixFiles, "csl_daily": CslDailyFiles}
