"""Writing our items out as the authors' per-video pkl files, so their training code can read them.

One file per clip, named by a view column (sample_id by default; SEDS looks files up by video name):
rgb items -> {name, feature (N, 1024) float32}; pose or gt_keypoints items (133 points) ->
{keypoints (T, 133, 3) x, y, score, img_list}. Names are checked before anything is written: two
clips with one name, or a name that is not a plain file name, stop the export (a second file would
silently replace the first).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.interop import authors_pkl
from pipeline.interop.views import ViewItems
from pipeline.keypoints.layout import NUM_KEYPOINTS
from pipeline.store.layout import StoreError


def file_names(rows: list[dict], column: str, where: Path) -> list[str]:
    """The file stem of every row: column values that are plain, distinct file names."""
    if rows and column not in rows[0]:
        raise StoreError(f"{where} has no column {column!r} to name the files by")
    names = [str(r[column]) if r[column] is not None else "" for r in rows]
    for row, name in zip(rows, names):
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            raise StoreError(f"{where}: sample {row['sample_id']} has {column} {name!r}, not a plain file name")
    seen: dict[str, str] = {}
    for row, name in zip(rows, names):
        if name in seen:
            raise StoreError(
                f"{where}: samples {seen[name]} and {row['sample_id']} share {column} {name!r}; "
                "name the files by a unique column (--name-column)"
            )
        seen[name] = row["sample_id"]
    return names


def export_authors(
    items: ViewItems,
    out: Path,
    *,
    name_column: str = "sample_id",
    samples: list[str] | None = None,
    frame_base: int = authors_pkl.FRAME_BASE,
) -> list[Path]:
    """Write one pkl per ok row of `items` (an rgb view, or a 133-point pose view) into `out`."""
    rows = items.ok_rows(samples)
    names = file_names(rows, name_column, items.path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for row, name in zip(rows, names):
        arrays = items.read(row)
        path = out / f"{name}.pkl"
        if "features" in arrays:
            authors_pkl.write_rgb(path, name, arrays["features"])
        elif "keypoints" in arrays and arrays["keypoints"].shape[1:] == (NUM_KEYPOINTS, 2):
            authors_pkl.write_pose(path, arrays["keypoints"], arrays["scores"], arrays["frames"], frame_base)
        else:
            raise StoreError(
                f"{items.path}: items of {items.stage} hold {sorted(arrays)} "
                f"{arrays.get('keypoints', next(iter(arrays.values()))).shape}; the authors' layout "
                f"takes rgb features or {NUM_KEYPOINTS}-point keypoints (export the pose or "
                "gt_keypoints view, not select)"
            )
        written.append(path)
    return written
