"""The SEDS release's split files as an annotation source: the exact clips and sentence groups the authors
trained and tested on (longtaojiang/SEDS data_h2/, data_ph/, data_csl/: <split>.pkl).

Each file is a pickled dict, read through the project's restricted unpickler (it refuses every class):
- How2Sign (data_h2): sentence key (SENTENCE_ID) -> list of clips {text, num_frames, video_name,
  new_video_name}; the clip is How2Sign's sentence clip new_video_name (= SENTENCE_NAME), as the loaders
  read <features>/<new_video_name>.pkl (dataloaders/dataloader_H2_retrieval_pose.py:72);
- CSL-Daily (data_csl): sentence key -> list of clips {video_name, ori_text, text, num_frames}; the clip
  is the frame folder video_name (dataloader_csl_retrieval_pose.py:71);
- PHOENIX-2014T (data_ph): clip name -> one clip {video_name, ori_text, text, num_frames}, each its own
  sentence (dataloader_ph_retrieval_pose.py:69-75); the clip is the frame folder <split>/<video_name>,
  <split> being the file's name, as the loader reads <features_RGB>/<subset>/<video_name>.pkl (:73).
The layout is told apart by the entries themselves. A sentence's text is its first clip's (the loaders'
captions[key][0]['text'], dataloader_H2_retrieval_pose.py:61); `text_field` picks `text` (English, what
the release's CLIP text encoder reads) or `ori_text` (the German or Chinese original; PHOENIX and CSL).

Rows: sample_id (new_video_name, else video_name), video_path, text, split, sentence_id (the key),
release_video_name, release_num_frames (the file's frame count), ori_text where given. `Origin.line` is
the clip's 1-based position in the file, so a rejection names the file and the clip.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.manifest.schema import ManifestError, Origin
from pipeline.safe_unpickle import UnsafePickle, safe_load

Rows = tuple[list[dict[str, Any]], list[Origin]]
TEXT_FIELDS = ("text", "ori_text")


@dataclass(frozen=True)
class ReleaseClipDirs:
    """Where each dataset's clips live under data.root (data params)."""

    how2sign: str = "sentence_clips"  # <dir>/<SENTENCE_NAME>.mp4
    phoenix: str = "features/fullFrame-210x260px"  # <dir>/<split>/<name>/ frame folders
    csl: str = "sentence/frames_512x512"  # <dir>/<name>/ frame folders


def _load(path: Path) -> dict:
    if not path.is_file():
        raise ManifestError(f"{path}: annotation file does not exist")
    try:
        data = safe_load(path)
    except UnsafePickle as err:
        raise ManifestError(f"{path}: not a SEDS release split file ({err})") from None
    if not isinstance(data, dict) or not data:
        raise ManifestError(
            f"{path}: expected a non-empty dict of sentence key -> clips (a SEDS release "
            f"data_h2/data_ph/data_csl split file), got {type(data).__name__}"
        )
    return data


def _layout(path: Path, data: dict) -> str:
    """'how2sign', 'csl' or 'phoenix', from the first entry; every entry must share it."""
    first_key, first = next(iter(data.items()))
    if isinstance(first, dict):
        return "phoenix"
    if isinstance(first, list) and first and isinstance(first[0], dict):
        return "how2sign" if "new_video_name" in first[0] else "csl"
    raise ManifestError(
        f"{path}, key {first_key!r}: expected a clip dict or a list of clip dicts, got {type(first).__name__}"
    )


def _clips(path: Path, key: Any, value: Any, layout: str) -> list[dict]:
    clips = [value] if layout == "phoenix" else value
    if not isinstance(clips, list) or not clips or not all(isinstance(c, dict) for c in clips):
        raise ManifestError(
            f"{path}, key {key!r}: expected {'a clip dict' if layout == 'phoenix' else 'a list of clip dicts'}"
            f" as in the file's first entry ({layout} layout)"
        )
    return clips


def _field(path: Path, key: Any, clip: dict, name: str) -> Any:
    if name not in clip:
        raise ManifestError(f"{path}, key {key!r}: a clip has no {name!r} (it has {sorted(clip)})")
    return clip[name]


def import_seds_release(
    path: Path, split: str, text_field: str = "text", dirs: ReleaseClipDirs = ReleaseClipDirs()
) -> Rows:
    """One release split file -> manifest rows (module docstring)."""
    path = Path(path)
    if text_field not in TEXT_FIELDS:
        raise ManifestError(f"data.seds_release_text: {text_field!r} is not one of {list(TEXT_FIELDS)}")
    data = _load(path)
    layout = _layout(path, data)
    if layout == "how2sign" and text_field != "text":
        raise ManifestError(f"{path}: How2Sign's release split has English text only; set data.seds_release_text: text")
    rows, origins = [], []
    for key, value in data.items():
        clips = _clips(path, key, value, layout)
        text = _field(path, key, clips[0], text_field)
        for clip in clips:
            name = _field(path, key, clip, "new_video_name" if layout == "how2sign" else "video_name")
            if layout == "how2sign":
                video_path = posixpath.join(dirs.how2sign, f"{name}.mp4")
            elif layout == "phoenix":
                video_path = posixpath.join(dirs.phoenix, path.stem, name)
            else:
                video_path = posixpath.join(dirs.csl, name)
            row = {
                "sample_id": name,
                "video_path": video_path,
                "start_s": None,
                "end_s": None,
                "text": text,
                "split": split,
                "sentence_id": str(key),
                "release_video_name": clip.get("video_name"),
                "release_num_frames": clip.get("num_frames"),
            }
            if "ori_text" in clip:
                row["ori_text"] = clip["ori_text"]
            rows.append(row)
            origins.append(Origin(str(path), len(origins) + 1))
    return rows, origins
