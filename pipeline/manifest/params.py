"""The `data` section of params.yaml: where the clips are and which annotation files describe them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import ParamError, knob
from pipeline.manifest.seds_release import TEXT_FIELDS

FORMATS = ("how2sign", "phoenix", "phoenix_corpus", "csl_daily", "seds_release", "csv")


@dataclass(frozen=True)
class DataParams:
    root: str = knob("data/sample", help="data root: every manifest video_path is relative to it")
    annotations: list[dict[str, Any]] = knob(
        default_factory=list,
        help=(
            "annotation files, each {format: how2sign|phoenix|phoenix_corpus|csl_daily|seds_release|csv, file: path, "
            "split: name}; phoenix takes the prefix of its .sign/.gloss/.de files; csl_daily CSL-Daily's "
            "sentence_label/split_1.txt (its rows of that split; video_map.txt beside it); seds_release a split file "
            "of the SEDS release (data_h2, data_ph or data_csl <split>.pkl: their exact clips and sentence ids)"
        ),
    )
    how2sign_clips: str = knob(
        "sentence_files",
        choices=("sentence_files", "ranges"),
        help="How2Sign clips as per-sentence files or as [start, end] ranges of full videos",
    )
    how2sign_clips_dir: str = knob("sentence_clips", help="folder (under root) of SENTENCE_NAME.mp4 files")
    how2sign_videos_dir: str = knob("videos", help="folder (under root) of VIDEO_NAME.mp4 files (ranges mode)")
    phoenix_frames_dir: str = knob(
        "features/fullFrame-210x260px",
        help="folder (under root) of PHOENIX frame folders "
        "(phoenix_corpus and seds_release data_ph: "
        "<split>/<name> in it)",
    )
    csl_frames_dir: str = knob(
        "sentence/frames_512x512",
        help="folder (under root) of CSL-Daily frame folders (csl_daily and seds_release data_csl: <name> in it)",
    )
    seds_release_text: str = knob(
        "text",
        choices=TEXT_FIELDS,
        help="seds_release: the sentence text taken from the split files: text (English, "
        "what the release's text encoder reads) or ori_text (PHOENIX's German, "
        "CSL-Daily's Chinese)",
    )
    require_text: bool = knob(True, help="reject rows with empty text (off for feature extraction only)")
    limit: int | None = knob(None, min=1, help="keep only the first N rows (smoke runs)")

    def validate(self, prefix: str) -> None:
        for i, entry in enumerate(self.annotations):
            where = f"{prefix}.annotations[{i}]"
            if not isinstance(entry, dict):
                raise ParamError(f"{where}: expected {{format, file, split}}, got {entry!r}")
            unknown = set(entry) - {"format", "file", "split"}
            if unknown:
                raise ParamError(f"{where}: unknown key(s) {sorted(unknown)}; entries take format, file, split")
            if entry.get("format") not in FORMATS:
                raise ParamError(f"{where}.format: {entry.get('format')!r} is not one of {list(FORMATS)}")
            for key in ("file", "split"):
                if not isinstance(entry.get(key), str) or not entry[key]:
                    raise ParamError(f"{where}.{key}: required (a non-empty string)")
