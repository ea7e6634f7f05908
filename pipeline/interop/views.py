"""A stage's view and its items, opened by view name (in the views folder) or by a .parquet path.

Exports read through this: the view says which item key each sample has and whether it is ok, its
metadata says which fingerprint folder of the store holds the items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.runner.plan import read_view
from pipeline.store.layout import StageDir, StoreError
from pipeline.store.reader import StageReader


@dataclass
class ViewItems:
    stage: str
    path: Path
    rows: list[dict[str, Any]]
    reader: StageReader

    def ok_rows(self, samples: list[str] | None = None) -> list[dict[str, Any]]:
        """Rows whose item is in the store, all of them or those of `samples` (an unknown or failed
        sample id is an error naming it)."""
        status, key = f"{self.stage}_status", f"{self.stage}_key"
        by_id = {r["sample_id"]: r for r in self.rows}
        if samples:
            unknown = [s for s in samples if s not in by_id]
            if unknown:
                raise StoreError(f"{self.path} has no sample(s) {unknown}")
            not_ok = [s for s in samples if by_id[s][status] != "ok" or by_id[s][key] not in self.reader]
            if not_ok:
                raise StoreError(
                    f"{self.path}: sample(s) {not_ok} have no {self.stage} item (status "
                    f"{[by_id[s][status] for s in not_ok]}; see seds cache failures {self.stage})"
                )
            return [by_id[s] for s in samples]
        return [r for r in self.rows if r[status] == "ok" and r[key] in self.reader]

    def read(self, row: dict[str, Any]) -> dict[str, np.ndarray]:
        return self.reader.read(row[f"{self.stage}_key"])

    def attrs(self, row: dict[str, Any]) -> dict[str, Any]:
        return self.reader.attrs(row[f"{self.stage}_key"])


def open_view(text: str, manifests_dir: Path, store_root: Path) -> ViewItems:
    """`text` is a view name (manifests_dir/<text>.parquet) or a path to a .parquet view (stage = its stem)."""
    path = Path(text)
    folder, stage = (path.parent, path.stem) if path.suffix == ".parquet" else (Path(manifests_dir), text)
    table, fingerprints = read_view(folder, stage)
    where = folder / f"{stage}.parquet"
    if stage not in fingerprints:
        raise StoreError(
            f"{where} has no fingerprint for stage {stage!r} in its metadata (found "
            f"{sorted(fingerprints)}); is it a stage view?"
        )
    needed = ["sample_id", f"{stage}_key", f"{stage}_status"]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise StoreError(f"{where} lacks column(s) {missing}")
    stage_dir = StageDir(Path(store_root), stage, fingerprints[stage])
    if not stage_dir.exists():
        raise StoreError(f"{stage_dir.path} does not exist: the store does not hold the items of {where}")
    return ViewItems(stage, where, table.to_pylist(), StageReader(stage_dir))
