"""The evaluate stage's figures, drawn from its saved outputs (so `seds report figures` redraws them
without the model): Figure 4 from similarity.npz and the clips' videos, Figure 5 from
token_similarity.npz. Both show the same query samples, those token_similarity.npz holds.

    <out>/figures/retrieval_top3.png      top-3 T2V retrieval per query, Pose-only / RGB-only / fused
    <out>/figures/fine_grained_<k>.png    query k's Pose-Text and RGB-Text step x word similarities
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import UserError
from pipeline.report.retrieval_figure import TOP_K, render_retrieval
from pipeline.report.similarity_figure import TokenMaps, render_similarity
from pipeline.train.groups import sentence_groups
from pipeline.train.metrics import T2VRetrieval
from pipeline.train.outputs import METRICS_FILE, SIMILARITY_FILE, TOKEN_MAPS_FILE

FIGURES_DIR = "figures"
RETRIEVAL_PNG = "retrieval_top3.png"


def fine_grained_png(k: int) -> str:
    """File name of query k's (1-based) fine-grained similarity figure."""
    return f"fine_grained_{k}.png"


class NotEvaluateMetrics(UserError, ValueError):
    """A metrics.json without what the evaluate stage writes into it."""


@dataclass(frozen=True)
class Ranking:
    """What the metrics in metrics.json ranked (split) and how: the figure ranks the same way, so `seds
    report figures` after a change of evaluate.protocol, tie_rule or group_by cannot show ranks the metrics
    did not count."""

    split: str
    protocol: str
    tie_rule: str
    group_by: str

    @classmethod
    def of(cls, metrics: dict[str, Any], path: Path) -> "Ranking":
        """From metrics.json (`path`, named in errors). A file older than its `group_by` key names its
        grouping in words only; the first word is the rule whose groups it formed ("text (no clip has a
        sentence_id)" groups as `text` does)."""
        try:
            group_by = metrics.get("group_by") or metrics["grouping"].split(" ", 1)[0]
            return cls(metrics["split"], metrics["protocol"], metrics["tie_rule"], group_by)
        except KeyError as err:
            raise NotEvaluateMetrics(
                f"{path} lacks key {err}: it is not an evaluate stage's metrics.json; rerun seds evaluate"
            ) from None


@dataclass
class EvaluateOutputs:
    """What the evaluate stage saved: the (N, N) [clip, sentence] matrices, the figure pairs' maps and
    the ranking rules of its metrics."""

    matrices: dict[str, np.ndarray]
    sample_ids: list[str]
    texts: list[str]
    sentence_ids: list[str | None]  # None where the clip has none (or the file predates them)
    maps: list[TokenMaps]
    ranking: Ranking


def load_outputs(out: Path) -> EvaluateOutputs:
    """Read similarity.npz, token_similarity.npz (no pickle) and metrics.json; a missing file names the
    stage to run."""
    out = Path(out)
    for name in (SIMILARITY_FILE, TOKEN_MAPS_FILE, METRICS_FILE):
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out / name} does not exist: run the evaluate stage first (seds evaluate)")
    ranking = Ranking.of(json.loads((out / METRICS_FILE).read_text()), out / METRICS_FILE)
    with np.load(out / SIMILARITY_FILE, allow_pickle=False) as sims:
        matrices = {s: sims[s] for s in ("fused", "pose", "rgb") if s in sims.files}  # a pose-only model: pose
        sample_ids, texts = sims["sample_ids"].tolist(), sims["texts"].tolist()
        sentence_ids = (
            [s or None for s in sims["sentence_ids"].tolist()]
            if "sentence_ids" in sims.files
            else [None] * len(sample_ids)
        )
    at = {s: i for i, s in enumerate(sample_ids)}
    maps = []
    with np.load(out / TOKEN_MAPS_FILE, allow_pickle=False) as z:
        for p, sample_id in enumerate(z["sample_ids"].tolist()):
            if sample_id not in at:
                raise ValueError(
                    f"{out / TOKEN_MAPS_FILE} holds {sample_id}, which {out / SIMILARITY_FILE} "
                    "lacks: the two files come from different runs; rerun seds evaluate"
                )
            steps, words = z["step_mask"][p], z["word_mask"][p]
            i = at[sample_id]
            maps.append(
                TokenMaps(
                    sample_id,
                    str(z["texts"][p]),
                    z["tokens"][p][words].tolist(),
                    z["pose"][p][steps][:, words],
                    z["rgb"][p][steps][:, words],
                    np.flatnonzero(steps),
                    {s: float(m[i, i]) for s, m in matrices.items()},
                    len(steps),
                )
            )
    return EvaluateOutputs(matrices, sample_ids, texts, sentence_ids, maps, ranking)


def write_figures(out: Path, params: Any) -> list[Path]:
    """Draw every figure of the evaluate outputs in `out` into `out`/figures (emptied first, so no
    figure of an earlier run is left beside the new ones); no figure query leaves the folder empty."""
    from pipeline.report.clip_frames import clip_strips

    saved = load_outputs(out)
    folder = Path(out) / FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    if not saved.maps:
        return []
    e, rank = params["evaluate"], saved.ranking
    at = {s: i for i, s in enumerate(saved.sample_ids)}
    queries = [at[m.sample_id] for m in saved.maps]
    groups = sentence_groups(saved.texts, saved.sentence_ids, rank.group_by)
    tables = [T2VRetrieval(m, groups, rank.protocol) for m in saved.matrices.values()]
    shown = sorted(
        {
            saved.sample_ids[hit.clip]
            for q in queries
            for table in tables
            for hit in table.top(table.query_of(q), TOP_K, rank.tie_rule)
        }
    )
    strips = clip_strips(
        Path(params.runtime.manifests),
        Path(params["data"].root),
        shown,
        e.figure_frames,
        params.runtime.decode_timeout_s,
    )
    candidates = (
        f"{len(groups.heads)} sentence groups by {rank.group_by}"
        if rank.protocol == "authors"
        else f"{len(saved.sample_ids)} clips"
    )
    paths = [
        render_retrieval(
            folder / RETRIEVAL_PNG,
            saved.matrices,
            saved.sample_ids,
            saved.texts,
            queries,
            strips,
            groups,
            rank.protocol,
            rank.tie_rule,
            title=f"Text-to-video retrieval on split {rank.split!r} ({rank.protocol} protocol, "
            f"{rank.tie_rule} ties): top {TOP_K} of {candidates} per query",
        )
    ]
    for k, maps in enumerate(saved.maps, 1):
        paths.append(render_similarity(folder / fine_grained_png(k), maps))
    return paths
