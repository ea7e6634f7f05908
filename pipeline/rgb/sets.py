"""Reading rgb feature sets by name, and mixing them as CiCo and SEDS do.

Each feature set (an entry of `rgb.feature_sets`) is computed by its own run of the rgb stage
(`seds run rgb --set rgb.feature_set=NAME`) into its own fingerprint folder under cache/rgb/. A
reader needs no view per set: a clip's item key in a set is item_key(content_hash, start_s, end_s,
set fingerprint), and the probe view holds the first three for every clip. So a trainer opens the
sets it wants by name (`open_feature_sets`) and reads any probe-view row from each.

CiCo/SEDS mix a domain-aware I3D (fine-tuned on the target dataset) with the domain-agnostic BSL-1K
one, window by window, before choosing windows: (1 - a) * aware + a * agnostic (CiCo's
`combine_type: sum`, `alpha` = a). The windows of two sets with the same sampling params are the same
frames, so mixing the stored (already chosen) windows equals mixing all windows and then choosing;
`read_mixed` checks that the windows agree and refuses to mix when they do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.config import Params
from pipeline.fingerprint import item_key
from pipeline.rgb.params import with_feature_set
from pipeline.rgb.stage import RgbStage
from pipeline.runner.plan import read_view
from pipeline.store.layout import StageDir, StoreError
from pipeline.store.reader import StageReader


@dataclass
class FeatureSetStore:
    """One feature set's items in the store, addressed by probe-view rows."""

    name: str
    fingerprint: str
    reader: StageReader

    def key(self, row: Mapping[str, Any]) -> str:
        return item_key(row["content_hash"], row["start_s"], row["end_s"], self.fingerprint)

    def __contains__(self, row: Mapping[str, Any]) -> bool:
        return self.key(row) in self.reader

    def read(self, row: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """{'features': (n, 1024) float16, 'windows': (n, window) int64}; KeyError naming the sample if absent."""
        key = self.key(row)
        if key not in self.reader:
            raise KeyError(
                f"rgb feature set {self.name!r} has no item for sample {row['sample_id']} "
                f"(run: seds run rgb --set rgb.feature_set={self.name})"
            )
        return self.reader.read(key)


def open_feature_sets(params: Params, names: Sequence[str]) -> dict[str, FeatureSetStore]:
    """The named feature sets of this project's store, each at the fingerprint its params give today."""
    runtime = params.runtime
    _, fingerprints = read_view(Path(runtime.manifests), "probe")
    probe = fingerprints.get("probe")
    stores = {}
    for name in names:
        digest = RgbStage(with_feature_set(params, name)).fingerprint(probe).digest
        stage_dir = StageDir(Path(runtime.store), "rgb", digest)
        if not stage_dir.exists():
            raise StoreError(
                f"rgb feature set {name!r} (fingerprint {digest[:12]}) was never computed in "
                f"{runtime.store}: run `seds run rgb --set rgb.feature_set={name}` first"
            )
        stores[name] = FeatureSetStore(name, digest, StageReader(stage_dir))
    return stores


def mix(features: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """sum_k weights[k] * features[k] in float32, e.g. {'aware': 1 - a, 'agnostic': a}."""
    if set(features) != set(weights):
        raise ValueError(f"mix weights name {sorted(weights)} but the features are {sorted(features)}")
    shapes = {name: f.shape for name, f in features.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"feature sets differ in shape and cannot be mixed: {shapes}")
    return sum(np.float32(weights[name]) * features[name].astype(np.float32) for name in features)


def read_mixed(
    stores: Mapping[str, FeatureSetStore], weights: Mapping[str, float], row: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(mixed (n, 1024) float32 features, (n, window) windows) of one probe-view row."""
    items = {name: stores[name].read(row) for name in weights}
    windows = [item["windows"] for item in items.values()]
    if any(w.shape != windows[0].shape or not np.array_equal(w, windows[0]) for w in windows[1:]):
        raise ValueError(
            f"sample {row['sample_id']}: the feature sets {sorted(items)} hold different windows "
            "(their rgb window params differ); mixing them would add features of different frames"
        )
    return mix({name: item["features"] for name, item in items.items()}, weights), windows[0]
