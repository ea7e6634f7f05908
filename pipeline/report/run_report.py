"""`report.md` of one evaluated run: what was measured, on what data, with which weights, how long each
stage took, and the params, in one page a reader can trust without knowing the pipeline.

Everything comes from what the stages wrote, never from what params.yaml says now, where the two can
differ: metrics from evaluate's metrics.json; the model's params, text encoder, init and the store
folders it read from the train checkpoint; the weights and times of item stages from the run records
beside their items (`<store>/<stage>/<fingerprint>/runs/`, pipeline/runner/runlog.py) at the fingerprint
train read (rgb) or the current view holds; data sizes from the manifests and the store. A value no
stage recorded is written as "not recorded", never guessed. Links are relative to report.md, so the folder can be
moved or published as is.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from pipeline.report.figures import FIGURES_DIR, RETRIEVAL_PNG, fine_grained_png
from pipeline.report.stage_times import stage_time_row
from pipeline.rgb.params import SET_PREFIX
from pipeline.runner.runlog import RUNS_FOLDER, read_runs
from pipeline.store.layout import StageDir
from pipeline.train.outputs import METRICS_FILE, PLOTS_DIR, TOKEN_MAPS_FILE, TRAIN_PLOT, VAL_PLOT

ITEM_STAGES = ("probe", "pose", "gt_keypoints", "select", "rgb")
STREAM_NAMES = {"fused": "Fused (SEDS)", "pose": "Pose only", "rgb": "RGB only"}
REPORT_FILE = "report.md"


def _view(manifests: Path, stage: str) -> tuple[list[dict[str, Any]], dict[str, str]] | None:
    """The rows (split and status columns) and fingerprint chain of a view, None when it does not exist."""
    from pipeline.runner.plan import read_view

    if not (Path(manifests) / f"{stage}.parquet").is_file():
        return None
    table, fingerprints = read_view(Path(manifests), stage)
    columns = [c for c in ("split", f"{stage}_status") if c in table.column_names]
    return table.select(columns).to_pylist(), fingerprints


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


PROTOCOL_NAMES = {"authors": "authors' protocol (clips grouped by sentence)", "per_clip": "per clip"}


def _selection(metrics: dict[str, Any]) -> str:
    sel = metrics.get("selection") or {}
    if sel.get("rule") == "imported":
        return f"Model: imported from the release checkpoint {sel.get('source')} (not trained here)."
    if not sel.get("epoch"):
        return "Model: the last training step (train.select: last, or no selection evaluation ran)."
    text = (
        f"Model: epoch {sel['epoch']} of training, the best {sel.get('metric')} on split `{sel.get('split')}` "
        f"({sel.get('value', float('nan')):.1f}; train.select: {sel.get('rule')})."
    )
    if sel.get("on_test"):
        text += (
            " **Selected on the test set** (as the authors report): these test figures are optimistic and not "
            "comparable with a model selected on a split held out from evaluation."
        )
    return text


def _filip(metrics: dict[str, Any]) -> str:
    padding = metrics.get("filip_padding", "authors")
    return (
        "FILIP softmaxes run over every token, padded ones included (the authors'; train.filip_padding: authors)."
        if padding == "authors"
        else "FILIP softmaxes run over the valid tokens only (train.filip_padding: masked; the authors' include "
        "padded tokens)."
    )


def _metrics(metrics: dict[str, Any]) -> list[str]:
    note, count = metrics.get("clips_note", ""), f"{metrics['clips']} clips"
    left_out = note[len(count) :] if note.startswith(count) else ""  # clips left out or kept despite a rule
    headline = metrics.get("protocol", "per_clip")
    texts = f"{metrics['distinct_texts']} distinct texts, " if "distinct_texts" in metrics else ""
    lines = [
        f"Split `{metrics['split']}`: {metrics['clips']} clips{left_out}, listed by "
        f"{metrics.get('split_source') or 'an annotation source not recorded'}; {metrics.get('sentences', '?')} "
        f"sentence groups by {metrics.get('grouping', 'text')} ({texts}{metrics.get('repeated_texts', 0)} clips "
        f"share their text with another clip); chance R@1 "
        f"{metrics['chance_R@1']:.1f} % under the headline protocol, {PROTOCOL_NAMES.get(headline, headline)}; "
        f"tie rule {metrics['tie_rule']}. R@K in %, MedR in ranks (lower is better; V2T MedR of the authors' "
        "protocol is the lower middle rank, as the release's torch.median). The authors' protocol: T2V ranks "
        "the sentence groups by their best clip, V2T ranks each clip against the groups' sentences; per clip: "
        "every clip against every clip's sentence.",
        "",
        _selection(metrics),
        "",
        _filip(metrics),
        "",
    ]
    protocols = metrics.get("protocols") or {headline: metrics["streams"]}
    rows = []
    for stream in ("fused", "pose", "rgb"):
        for name in sorted(protocols, key=lambda n: n != headline):
            if stream not in protocols[name]:
                continue
            m = protocols[name][stream]
            rows.append(
                [
                    STREAM_NAMES[stream],
                    PROTOCOL_NAMES.get(name, name) + (" (headline)" if name == headline else ""),
                    *(f"{m['t2v'][k]:.1f}" for k in ("R@1", "R@5", "R@10", "MedR")),
                    *(f"{m['v2t'][k]:.1f}" for k in ("R@1", "R@5", "R@10", "MedR")),
                ]
            )
    return lines + _table(
        [
            "stream",
            "protocol",
            "T2V R@1",
            "T2V R@5",
            "T2V R@10",
            "T2V MedR",
            "V2T R@1",
            "V2T R@5",
            "V2T R@10",
            "V2T MedR",
        ],
        rows,
    )


def _selection_split(train_metrics: dict[str, Any]) -> str:
    """The split train evaluated after its epochs, named as train recorded it: with train.select best_test
    that is the test split, and calling its numbers "validation" would hide it."""
    selection = train_metrics.get("selection") or {}
    split = selection.get("split")
    if not split:
        return "the selection split (not recorded)"
    test = ", the test set" if selection.get("on_test") else ""
    return f"the selection split `{split}` (train.select: {selection.get('rule')}{test})"


def _training(train_metrics: dict[str, Any] | None, train_dir: Path, here: Path) -> list[str]:
    if train_metrics is None:
        return [f"No {train_dir / METRICS_FILE}: training figures not recorded."]
    final = train_metrics.get("final", {})
    split = _selection_split(train_metrics)
    evaluated = (
        f"; last evaluated on {split} at epoch {final['epoch']}: T2V R@1 {final['t2v_R@1']:.1f} %, "
        f"V2T R@1 {final['v2t_R@1']:.1f} %"
        if "t2v_R@1" in final
        else "; no selection split evaluated"
    )
    plots = train_dir / PLOTS_DIR
    links = ", ".join(
        f"[{name}]({_rel(plots / name, here)})" for name in (TRAIN_PLOT, VAL_PLOT) if (plots / name).is_file()
    )
    return [
        f"{train_metrics['epochs']} epochs, {train_metrics['step']} of {train_metrics['total_steps']} steps "
        f"on {train_metrics['clips']} clips; final loss {final.get('loss', float('nan')):.3f}{evaluated}.",
        f"Curves per epoch (loss and its parts; R@1 on {split}, in {VAL_PLOT}): `dvc plots show` draws them "
        f"from {links}.",
    ]


def _rel(path: Path, here: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(here).resolve())).as_posix()


def _figures(out: Path) -> list[str]:
    folder = out / FIGURES_DIR
    lines = []
    if (folder / RETRIEVAL_PNG).is_file():
        lines.append(f"- [Top-3 text-to-video retrieval, Pose only / RGB only / fused]({FIGURES_DIR}/{RETRIEVAL_PNG})")
    if (out / TOKEN_MAPS_FILE).is_file():
        import numpy as np

        with np.load(out / TOKEN_MAPS_FILE, allow_pickle=False) as z:
            for k, sample_id in enumerate(z["sample_ids"].tolist(), 1):
                if (folder / fine_grained_png(k)).is_file():
                    lines.append(
                        f"- [Fine-grained Pose-Text and RGB-Text similarity, {sample_id}]"
                        f"({FIGURES_DIR}/{fine_grained_png(k)})"
                    )
    return lines or ["No figures (evaluate.figure_queries is 0, or `seds report figures` was not run)."]


def _weights_at(store: Path, stage: str, fingerprint: str | None) -> str:
    """The weights line of the last run at a stage's fingerprint; else the artifacts its STAGE.json names."""
    if fingerprint is None:
        return "not recorded"
    runs = [r for r in read_runs(StageDir(store, stage, fingerprint).path / RUNS_FOLDER) if r.get("weights")]
    if runs:
        return runs[-1]["weights"]
    stage_json = StageDir(store, stage, fingerprint).stage_json
    if stage_json.is_file():
        artifacts = json.loads(stage_json.read_text()).get("artifacts", {})
        named = ", ".join(
            f"{k}: {'random weights (explicit)' if v == 'random' else f'content hash {v[:12]}'}"
            for k, v in sorted(artifacts.items())
        )
        return f"{named or 'no weights'} (from STAGE.json; no run record)"
    return f"not recorded (no {stage} folder at fingerprint {fingerprint[:12]} in {store})"


def _rgb_weights(store: Path, entry: str, read: dict[str, dict[str, str]], chains: dict[str, dict[str, str]]) -> str:
    """One train.rgb_views entry's I3D: at the fingerprint train read it (the checkpoint's `inputs`); a
    checkpoint without them gives a view's fingerprint from the view, and a feature set's from nowhere."""
    if entry in read:
        stage, fingerprint = read[entry]["stage"], read[entry]["fingerprint"]
    elif not entry.startswith(SET_PREFIX):
        stage = Path(entry).stem
        fingerprint = chains.get(stage, {}).get(stage)
    else:
        return (
            f"{entry}: not recorded (the checkpoint predates train recording the fingerprints it read; "
            "retrain, or see `seds cache stats`)"
        )
    return f"{entry} (fingerprint `{(fingerprint or '?')[:12]}`): {_weights_at(store, stage, fingerprint)}"


def _weights(
    store: Path,
    chains: dict[str, dict[str, str]],
    train: dict[str, Any],
    checkpoint: dict[str, Any],
    checkpoint_path: str,
) -> list[str]:
    read = {i["entry"]: i for i in checkpoint.get("inputs") or []}
    chain = chains.get(Path(train["pose_view"]).stem, {})
    select_source = next((s for s in ("pose", "gt_keypoints") if s in chain), None)
    pose_fingerprint = chain.get("pose") or chains.get("pose", {}).get("pose")
    pose = _weights_at(store, "pose", pose_fingerprint) if pose_fingerprint else "pose stage not run"
    if select_source and select_source != "pose":
        pose += f"; not used for training (the keypoints came from {select_source})"
    rows = [["pose (RTMPose-WholeBody)", pose]]
    if select_source:
        rows.append(
            [
                "keypoints the model saw",
                f"{train['pose_view']} of {select_source}"
                + (": ground-truth keypoints, no pose model" if select_source == "gt_keypoints" else ""),
            ]
        )
    for entry in train["rgb_views"]:
        rows.append(["RGB features (I3D)", _rgb_weights(store, entry, read, chains)])
    for line in checkpoint.get("weights") or ["initial weights not recorded"]:
        rows.append(["SEDS initial weights", line])
    rows.append(["SEDS model", f"{checkpoint_path}, trained {checkpoint.get('step')} steps"])
    return _table(["part", "weights"], rows)


def _data(
    manifests: Path,
    store: Path,
    split_views: dict[str, Any],
    train: dict[str, Any],
    train_metrics: dict[str, Any] | None,
    metrics: dict[str, Any],
) -> list[str]:
    from pipeline.store.maintenance import stats

    manifest = _view(manifests, "manifest")
    splits = sorted(Counter(r["split"] for r in manifest[0])) if manifest else []
    header = ["split", "manifest clips"] + [f"{s} ok" for s in split_views]
    rows = []
    for split in splits:
        row = [split, sum(1 for r in manifest[0] if r["split"] == split)]
        for stage, (view_rows, _) in split_views.items():
            row.append(sum(1 for r in view_rows if r.get("split") == split and r.get(f"{stage}_status") == "ok"))
        rows.append(row)
    lines = _table(header, rows) if rows else [f"No {manifests}/manifest.parquet: clip counts not recorded."]
    used = [f"training used {train_metrics['clips']} clips of split `{train['split']}`"] if train_metrics else []
    used.append(f"evaluation {metrics['clips']} of split `{metrics['split']}`")
    lines += ["", "Of these, " + ", ".join(used) + " (clips with every input ok).", ""]
    wanted = {(stage, chain[stage]) for stage, (_, chain) in split_views.items() if stage in chain}
    found = [s for s in stats(store) if (s.stage, s.fingerprint) in wanted]
    lines += _table(
        ["store stage", "fingerprint", "items", "failed", "shards", "size"],
        [
            [s.stage, f"`{s.fingerprint[:12]}`", s.items, s.failures, s.shards, _size(s.bytes)]
            for s in sorted(found, key=lambda s: ITEM_STAGES.index(s.stage) if s.stage in ITEM_STAGES else 99)
        ],
    )
    return lines


def _times(
    store: Path, split_views: dict[str, Any], train_metrics: dict[str, Any] | None, metrics: dict[str, Any]
) -> list[str]:
    rows = [stage_time_row(store, stage, chain.get(stage)) for stage, (_, chain) in split_views.items()]
    if train_metrics:
        rows.append(
            [
                "train",
                f"{train_metrics['seconds']:.1f}",
                f"{train_metrics['step']} steps (training loop, resumed parts included)",
                "",
            ]
        )
    if "seconds" in metrics:
        rows.append(["evaluate", f"{metrics['seconds']:.1f}", "encoding, retrieval, figures", ""])
    return _table(["stage", "seconds (wall-clock)", "what", "last end (UTC)"], rows)


def _params(params: Any, train: dict[str, Any]) -> list[str]:
    lines = []
    for name in ("sample", "data", "probe", "pose", "select", "rgb"):
        if name in params.raw:
            lines += [
                f"<details><summary>{name} (params.yaml)</summary>",
                "",
                "```yaml",
                yaml.safe_dump({name: asdict(params[name])}, sort_keys=False).rstrip(),
                "```",
                "",
                "</details>",
                "",
            ]
    lines += [
        "<details><summary>train (saved in the checkpoint: what the model was trained with)</summary>",
        "",
        "```yaml",
        yaml.safe_dump({"train": train}, sort_keys=False).rstrip(),
        "```",
        "",
        "</details>",
        "",
        "<details><summary>evaluate (params.yaml)</summary>",
        "",
        "```yaml",
        yaml.safe_dump({"evaluate": asdict(params["evaluate"])}, sort_keys=False).rstrip(),
        "```",
        "",
        "</details>",
    ]
    return lines


def write_run_report(params: Any, out: Path, checkpoint: dict[str, Any] | None = None) -> Path:
    """Write `out`/report.md from the evaluate outputs in `out` and what the other stages recorded.
    `checkpoint` is the loaded train checkpoint (when not given, its plain values are read from
    evaluate.checkpoint without torch: pipeline/report/checkpoint_info.py)."""
    from pipeline.report.checkpoint_info import checkpoint_info

    out = Path(out)
    e = params["evaluate"]
    metrics_path = out / METRICS_FILE
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path} does not exist: run the evaluate stage first (seds evaluate)")
    metrics = json.loads(metrics_path.read_text())
    checkpoint_path = metrics.get("checkpoint", e.checkpoint)
    ck = checkpoint if checkpoint is not None else checkpoint_info(Path(checkpoint_path))
    train = ck["params"]
    train_dir = Path(train["out"])
    train_metrics = json.loads((train_dir / METRICS_FILE).read_text()) if (train_dir / METRICS_FILE).is_file() else None
    manifests, store = Path(params.runtime.manifests), Path(params.runtime.store)
    split_views = {s: v for s in ITEM_STAGES if (v := _view(manifests, s)) is not None}
    chains = {s: chain for s, (_, chain) in split_views.items()}
    lines = [
        f"# Run report: SEDS retrieval on split `{metrics['split']}`",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by pipeline/report/run_report.py "
        f"(`seds report run` rewrites it) from {out}/{METRICS_FILE}, {checkpoint_path} and the run records "
        "of the stages. Headline: the fused stream (the pose stream for a pose-only model).",
        "",
        "## Metrics",
        "",
        *_metrics(metrics),
        "",
        "## Training",
        "",
        *_training(train_metrics, train_dir, out),
        "",
        "## Figures",
        "",
        *_figures(out),
        "",
        "## Weights used",
        "",
        *_weights(store, chains, train, ck, checkpoint_path),
        "",
        "## Data",
        "",
        *_data(manifests, store, split_views, train, train_metrics, metrics),
        "",
        "## Time per stage",
        "",
        "Wall-clock seconds of each item stage at the fingerprint its view holds: the union of its runs' "
        "[start, end] spans, so runs at the same time (feature sets sharing a fingerprint, array tasks) count "
        "once; a run killed before its end is listed, not counted. Then the training loop and evaluate. "
        "sample and manifest record no time.",
        "",
        *_times(store, split_views, train_metrics, metrics),
        "",
        "## Params",
        "",
        *_params(params, train),
        "",
    ]
    path = out / REPORT_FILE
    path.write_text("\n".join(lines))
    return path
