"""Importers: turn a dataset's own annotation files into manifest rows (with their origins).

- How2Sign realigned sentence CSVs (TAB-separated, CRLF): per-sentence clip files or [start, end]
  ranges of the full videos;
- PHOENIX-2014T: the three parallel .sign/.gloss/.de files, or the official pipe-separated corpus CSV;
- CSL-Daily: the official sentence labels (split_1.txt and video_map.txt);
- a plain CSV (video_path, text, and optionally sample_id, split, start_s, end_s, anything else).
"""

from __future__ import annotations

import csv
import posixpath
from pathlib import Path
from typing import Any

from pipeline.manifest.schema import ManifestError, Origin

Rows = tuple[list[dict[str, Any]], list[Origin]]

HOW2SIGN_COLUMNS = (
    "VIDEO_ID",
    "VIDEO_NAME",
    "SENTENCE_ID",
    "SENTENCE_NAME",
    "START_REALIGNED",
    "END_REALIGNED",
    "SENTENCE",
)
PHOENIX_CORPUS_COLUMNS = ("name", "video", "start", "end", "speaker", "orth", "translation")
PHOENIX_SPLIT_DIRS = ("train", "dev", "test")  # the folders of features/fullFrame-210x260px/
CSL_SPLIT_COLUMNS = ("name", "split")
CSL_VIDEO_MAP_COLUMNS = ("index", "name", "length", "gloss", "char", "word", "postag")
CSL_VIDEO_MAP = "video_map.txt"  # beside split_1.txt in CSL-Daily's sentence_label/
# The nslt .sign files begin with this placeholder for wherever the frames were extracted.
PHOENIX_SIGN_PLACEHOLDER = "<PATH_TO_EXTRACTED_AND_RESIZED_FRAMES>/"


def _read_table(path: Path, delimiter: str, required: tuple[str, ...]) -> tuple[list[dict[str, str]], list[Origin]]:
    if not path.is_file():
        raise ManifestError(f"{path}: annotation file does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ManifestError(f"{path}: empty file") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise ManifestError(f"{path}, row 1 (header): missing column(s) {missing}; found {header}")
        rows, origins = [], []
        for line_no, values in enumerate(reader, start=2):
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise ManifestError(
                    f"{path}, row {line_no}: {len(values)} fields, header has {len(header)} (delimiter {delimiter!r})"
                )
            rows.append(dict(zip(header, values)))
            origins.append(Origin(str(path), line_no))
    return rows, origins


def _number(value: str, origin: Origin, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ManifestError(f"{origin.at(column)}: {value!r} is not a number") from None


def import_how2sign(
    csv_path: Path,
    split: str,
    clips: str = "sentence_files",
    clips_dir: str = "sentence_clips",
    videos_dir: str = "videos",
) -> Rows:
    """How2Sign realigned CSV -> rows. `clips`: 'sentence_files' (SENTENCE_NAME.mp4 in clips_dir) or
    'ranges' (VIDEO_NAME.mp4 in videos_dir with START/END_REALIGNED as the clip bounds)."""
    if clips not in ("sentence_files", "ranges"):
        raise ManifestError(f"data.how2sign_clips: {clips!r} is not 'sentence_files' or 'ranges'")
    table, origins = _read_table(Path(csv_path), "\t", HOW2SIGN_COLUMNS)
    rows = []
    for rec, origin in zip(table, origins):
        row = {
            "sample_id": rec["SENTENCE_NAME"],
            "text": rec["SENTENCE"],
            "split": split,
            "video_id": rec["VIDEO_ID"],
            "sentence_id": rec["SENTENCE_ID"],
            "video_name": rec["VIDEO_NAME"],
        }
        if clips == "sentence_files":
            row.update(video_path=posixpath.join(clips_dir, rec["SENTENCE_NAME"] + ".mp4"), start_s=None, end_s=None)
        else:
            row.update(
                video_path=posixpath.join(videos_dir, rec["VIDEO_NAME"] + ".mp4"),
                start_s=_number(rec["START_REALIGNED"], origin, "START_REALIGNED"),
                end_s=_number(rec["END_REALIGNED"], origin, "END_REALIGNED"),
            )
        rows.append(row)
    return rows, origins


def import_phoenix_parallel(prefix: Path, split: str) -> Rows:
    """PHOENIX-2014T as nslt ships it: <prefix>.sign (frame folders), .gloss, .de, line-aligned."""
    files = {ext: Path(f"{prefix}.{ext}") for ext in ("sign", "gloss", "de")}
    lines = {}
    for ext, path in files.items():
        if not path.is_file():
            raise ManifestError(f"{path}: PHOENIX .{ext} file does not exist")
        lines[ext] = path.read_text(encoding="utf-8").splitlines()
    counts = {ext: len(v) for ext, v in lines.items()}
    if len(set(counts.values())) != 1:
        raise ManifestError(f"{prefix}.{{sign,gloss,de}}: line counts differ {counts}; the files must be parallel")
    rows, origins = [], []
    for i, (sign, gloss, de) in enumerate(zip(lines["sign"], lines["gloss"], lines["de"]), start=1):
        folder = sign.strip()
        if folder.startswith(PHOENIX_SIGN_PLACEHOLDER):
            folder = folder[len(PHOENIX_SIGN_PLACEHOLDER) :]
        folder = folder.rstrip("/")
        rows.append(
            {
                "sample_id": posixpath.basename(folder),
                "video_path": folder,
                "start_s": None,
                "end_s": None,
                "text": de.strip(),
                "split": split,
                "gloss": gloss.strip(),
            }
        )
        origins.append(Origin(str(files["sign"]), i))
    return rows, origins


def _phoenix_split_dir(path: Path) -> str:
    """The folder of features/fullFrame-210x260px/ that holds a corpus file's frames: its split, from the
    official file name PHOENIX-2014-T.<split>.corpus.csv."""
    for part in path.name.split("."):
        if part in PHOENIX_SPLIT_DIRS:
            return part
    raise ManifestError(
        f"{path}: cannot tell which of {'/'.join(PHOENIX_SPLIT_DIRS)} holds its frame folders; a "
        "corpus file is named as the dataset ships it, PHOENIX-2014-T.<train|dev|test>.corpus.csv"
    )


def import_phoenix_corpus(csv_path: Path, split: str, frames_dir: str = "features/fullFrame-210x260px") -> Rows:
    """The official PHOENIX-2014-T.<split>.corpus.csv: name|video|start|end|speaker|orth|translation.
    Its `video` column (`<name>/1/*.png`) is not where the release keeps a clip's images: they lie in
    <frames_dir>/<split>/<name>/, as nslt's .sign files and the SEDS release's loaders address them, so
    that folder is the clip, <split> read from the file's name. Each clip is its own sentence (its name
    is its sentence_id), as in the SEDS release's data_ph split files."""
    path = Path(csv_path)
    table, origins = _read_table(path, "|", PHOENIX_CORPUS_COLUMNS)
    folder = posixpath.join(frames_dir, _phoenix_split_dir(path))
    rows = []
    for rec in table:
        rows.append(
            {
                "sample_id": rec["name"],
                "video_path": posixpath.join(folder, rec["name"]),
                "start_s": None,
                "end_s": None,
                "text": rec["translation"],
                "split": split,
                "sentence_id": rec["name"],
                "gloss": rec["orth"],
                "signer": rec["speaker"],
            }
        )
    return rows, origins


def import_csl_daily(split_path: Path, split: str, frames_dir: str = "sentence/frames_512x512") -> Rows:
    """CSL-Daily's official sentence labels: split_1.txt (name|split) lists the clips of each split
    (train, dev, test), video_map.txt beside it (index|name|length|gloss|char|word|postag) their
    sentences. The rows of `split`, each clip the frame folder <frames_dir>/<name>; text: the Chinese
    sentence (its space-separated characters joined); sentence_id: the sentence of the name (S000123 of
    S000123_P0004_T00), the key the SEDS release's data_csl files group clips by; signer: its P part."""
    path = Path(split_path)
    table, origins = _read_table(path, "|", CSL_SPLIT_COLUMNS)
    video_map = path.parent / CSL_VIDEO_MAP
    sentences, _ = _read_table(video_map, "|", CSL_VIDEO_MAP_COLUMNS)
    by_name = {rec["name"]: rec for rec in sentences}
    rows, kept = [], []
    for rec, origin in zip(table, origins):
        if rec["split"] != split:
            continue
        name = rec["name"]
        if name not in by_name:
            raise ManifestError(f"{origin.at('name')}: {name!r} is not in {video_map}")
        sentence = by_name[name]
        rows.append(
            {
                "sample_id": name,
                "video_path": posixpath.join(frames_dir, name),
                "start_s": None,
                "end_s": None,
                "text": "".join(sentence["char"].split()),
                "split": split,
                "sentence_id": name.split("_")[0],
                "gloss": sentence["gloss"],
                "signer": name.split("_")[1] if "_" in name else "",
            }
        )
        kept.append(origin)
    if not rows:
        splits = sorted({rec["split"] for rec in table})
        raise ManifestError(
            f"{path}: no clip of split {split!r} (its splits: {', '.join(splits) or 'none'}); the "
            "annotation entry's split names the file's: train, dev or test"
        )
    return rows, kept


def import_plain_csv(csv_path: Path, split: str) -> Rows:
    """A comma-separated file with at least video_path and text; sample_id defaults to the path
    (never the file stem: two folders may hold clips of one name), split to the given one."""
    path = Path(csv_path)
    if not path.is_file():
        raise ManifestError(f"{path}: annotation file does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in ("video_path", "text") if c not in header]
        if missing:
            raise ManifestError(f"{path}, row 1 (header): missing column(s) {missing}; found {header}")
        rows, origins = [], []
        for line_no, rec in enumerate(reader, start=2):
            origin = Origin(str(path), line_no)
            start = _number(rec["start_s"], origin, "start_s") if rec.get("start_s") else None
            end = _number(rec["end_s"], origin, "end_s") if rec.get("end_s") else None
            sample_id = rec.get("sample_id") or rec["video_path"] + (f"@{start}-{end}" if start is not None else "")
            row = {k: v for k, v in rec.items() if k not in ("sample_id", "start_s", "end_s", "split")}
            row.update(sample_id=sample_id, start_s=start, end_s=end, split=rec.get("split") or split)
            rows.append(row)
            origins.append(origin)
    return rows, origins
