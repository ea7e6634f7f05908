"""The evaluate figures and report.md: each figure drawn from small fixed arrays (a valid PNG of the
planned pixel size, true clips marked), and the figures plus report.md from evaluate-shaped outputs in
a tiny project whose clips are real videos (sample -> manifest -> probe, with the probe's run record)."""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import ParamError, build_section, load_params
from pipeline.report.figures import FIGURES_DIR, RETRIEVAL_PNG, fine_grained_png, write_figures
from pipeline.report.retrieval_figure import CORRECT, figure_size, frame_strip, render_retrieval
from pipeline.report.run_report import write_run_report
from pipeline.report.similarity_figure import FIGURE_IN, TokenMaps, render_similarity
from pipeline.train.evaluate import figure_indices, no_token_maps
from pipeline.train.groups import sentence_groups
from pipeline.train.metrics import T2VRetrieval, grouped_metrics, retrieval_metrics
from pipeline.train.outputs import TOKEN_MAPS_FILE
from pipeline.train.params import TrainParams

GREEN = tuple(int(CORRECT[i : i + 2], 16) for i in (1, 3, 5))


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR, after checking the signature, the IHDR checksum and the end chunk."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return struct.unpack(">II", data[16:24])


def pixels(path: Path) -> np.ndarray:
    import matplotlib.image

    return (matplotlib.image.imread(path)[..., :3] * 255).round().astype(np.uint8)


def count_colour(image: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(image == np.array(rgb, np.uint8), axis=-1).sum())


def test_figure_ranks_are_the_metrics_ranks_under_either_protocol():
    """The figure reads its top clips and true ranks from T2VRetrieval, the metrics' own ranking: per clip
    as before, and under the authors' protocol by sentence group. Clips 0 and 2 share a sentence; for it,
    clip 2 (0.5) ties clip 0 (0.5): per clip its own clip 0 ranks 2nd (pessimistic), but its group ranks
    1st. The figure once ranked clips per clip under every protocol, disagreeing with the headline."""
    sim = np.array(
        [
            [0.5, 0.1, 0.5, 0.0],  # [clip, sentence of clip j]: columns 0 and 2 are one sentence
            [0.2, 0.9, 0.2, 0.1],
            [0.5, 0.3, 0.5, 0.2],
            [0.1, 0.2, 0.1, 0.7],
        ],
        np.float32,
    )
    texts = ["hi", "book", "hi", "you"]
    per_clip = T2VRetrieval(sim, sentence_groups(texts), "per_clip")
    assert [(h.clip, h.correct) for h in per_clip.top(0, 3, "pessimistic")] == [(2, False), (0, True), (1, False)]
    assert [h.clip for h in per_clip.top(0, 3, "optimistic")] == [0, 2, 1]
    assert per_clip.ranks("pessimistic")[0] == 2 and per_clip.ranks("optimistic")[0] == 1
    for rule in ("pessimistic", "optimistic"):
        firsts = [per_clip.top(q, 1, rule)[0].correct for q in range(4)]
        assert 100.0 * np.mean(firsts) == retrieval_metrics(sim, rule)["t2v"]["R@1"]
    for ids in (None, ["a", "b", "c", "d"]):  # by text: 3 groups; by sentence id: 4
        groups = sentence_groups(texts, ids)
        authors = T2VRetrieval(sim, groups, "authors")
        for rule in ("pessimistic", "optimistic"):
            firsts = [authors.top(q, 1, rule)[0].correct for q in range(len(groups.heads))]
            assert 100.0 * np.mean(firsts) == grouped_metrics(sim, groups, rule)["t2v"]["R@1"]
    authors = T2VRetrieval(sim, sentence_groups(texts), "authors")
    assert authors.ranks("pessimistic")[authors.query_of(2)] == 1
    assert [(h.clip, h.correct) for h in authors.top(authors.query_of(2), 2, "pessimistic")] == [(0, True), (1, False)]


# Five clips: 0 and 1 sign sentence id "a", 2 signs "b" with the same text ("hi"), 3 and 4 their own.
SITUATION_IDS, SITUATION_TEXTS = ["a", "a", "b", "c", "d"], ["hi", "hi", "hi", "book", "you"]
SITUATION_SCORES = {
    "hi": [0.6, 0.7, 0.9, 0.1, 0.2],  # clip 2 (same text, id b) first, 1 (sibling) second, 0 third
    "book": [0.3, 0.1, 0.2, 0.8, 0.5],
    "you": [0.1, 0.0, 0.05, 0.4, 0.4],
}  # clip 3 ties clip 4: the tie rule decides
# The rank the protocol gives each clip's query for the fused stream: per clip, clips for the clip's sentence;
# authors, sentence groups (by id: {0, 1}, {2}, {3}, {4}; by text: {0, 1, 2}, {3}, {4}) for the group's sentence.
SITUATION_RANKS = {
    ("per_clip", "sentence_id", "pessimistic"): ([3, 2, 1, 1, 2], 5),
    ("per_clip", "sentence_id", "optimistic"): ([3, 2, 1, 1, 1], 5),
    ("authors", "sentence_id", "pessimistic"): ([2, 2, 1, 1, 2], 4),
    ("authors", "sentence_id", "optimistic"): ([2, 2, 1, 1, 1], 4),
    ("authors", "text", "pessimistic"): ([1, 1, 1, 1, 2], 3),
    ("authors", "text", "optimistic"): ([1, 1, 1, 1, 1], 3),
}
SITUATION_RANKS.update(
    {
        ("per_clip", "text", rule): SITUATION_RANKS["per_clip", "sentence_id", rule]
        for rule in ("pessimistic", "optimistic")
    }
)  # per clip ranks clips: no groups


def _situation_matrices() -> dict[str, np.ndarray]:
    """[clip, sentence of clip j] per stream: fused as SITUATION_SCORES; pose the same with clip 0 first for
    "hi"; rgb its mirror image (clip 4 the best for every sentence)."""
    fused = np.array([[SITUATION_SCORES[SITUATION_TEXTS[j]][c] for j in range(5)] for c in range(5)])
    pose = fused.copy()
    pose[0, :3] = 0.95
    return {"fused": fused, "pose": pose, "rgb": fused[::-1].copy()}


def _drawn_ranks(fig) -> list[tuple[int, int]]:
    """(rank, of n) of every "true clip|group: rank k of n" note, in drawing order (query by query, the
    streams left to right)."""
    notes = [re.fullmatch(r"true (?:clip|group): rank (\d+) of (\d+)", t.get_text()) for t in fig.texts]
    return [(int(m[1]), int(m[2])) for m in notes if m]


@pytest.mark.parametrize("protocol", ["authors", "per_clip"])
@pytest.mark.parametrize("group_by", ["sentence_id", "text"])
@pytest.mark.parametrize("tie_rule", ["pessimistic", "optimistic"])
def test_the_figure_says_the_rank_the_metrics_counted(protocol, group_by, tie_rule):
    """Issue 22's two cases: for clip 0's sentence the same-text clip under another sentence id (2) comes
    first and clip 0's sibling under its id (1) second. The figure once showed per-clip ranks ("rank 5 of
    5", "rank 3 of 5") where the metrics ranked sentence groups. Each note must be the protocol's rank, and
    the notes of one query per candidate give back the metrics' T2V R@1, R@5 and MedR."""
    from pipeline.report.retrieval_figure import retrieval_figure

    ids = [f"clip{i}" for i in range(5)]
    matrices = _situation_matrices()
    groups = sentence_groups(SITUATION_TEXTS, SITUATION_IDS, group_by)
    every_clip = list(range(5))
    fig = retrieval_figure(matrices, ids, SITUATION_TEXTS, every_clip, _strips(ids), groups, protocol, tie_rule, dpi=20)
    drawn = _drawn_ranks(fig)
    assert len(drawn) == 5 * 3  # pose, rgb, fused for each query
    expected, n = SITUATION_RANKS[protocol, group_by, tie_rule]
    assert [drawn[3 * q + 2] for q in every_clip] == [(rank, n) for rank in expected]  # the fused column
    one_per_candidate = every_clip if protocol == "per_clip" else groups.heads.tolist()
    fig = retrieval_figure(
        matrices, ids, SITUATION_TEXTS, one_per_candidate, _strips(ids), groups, protocol, tie_rule, dpi=20
    )
    drawn = _drawn_ranks(fig)
    for column, stream in enumerate(("pose", "rgb", "fused")):
        ranks = np.array([drawn[3 * q + column][0] for q in range(len(one_per_candidate))])
        metrics = (
            grouped_metrics(matrices[stream], groups, tie_rule)
            if protocol == "authors"
            else retrieval_metrics(matrices[stream], tie_rule)
        )["t2v"]
        assert {k: metrics[k] for k in ("R@1", "R@5", "MedR")} == {
            "R@1": 100.0 * np.mean(ranks <= 1),
            "R@5": 100.0 * np.mean(ranks <= 5),
            "MedR": float(np.median(ranks)),
        }
    if protocol == "authors":  # pose ranks clip 0 first for "hi": its group is a hit, by either grouping
        assert drawn[0] == (1, n)


def _strips(ids: list[str]) -> dict[str, np.ndarray | str]:
    frames = np.zeros((3, 24, 32, 3), np.uint8)
    frames[:, 6:18, 10:22] = (200, 120, 60)
    strips: dict[str, np.ndarray | str] = {s: frame_strip(frames) for s in ids}
    strips[ids[-1]] = "no frames: missing_file: data/clip.mp4 does not exist"
    return strips


def test_retrieval_figure_is_a_png_of_its_planned_size_with_true_clips_marked(tmp_path):
    n = 5
    ids = [f"clip{i}" for i in range(n)]
    texts = ["hello friend", "book eat", "what name " * 30, "good house", "you happy"]
    hits = {s: np.eye(n, dtype=np.float32) + 0.1 * k for k, s in enumerate(("fused", "pose", "rgb"))}
    groups = sentence_groups(texts)
    path = render_retrieval(tmp_path / "hits.png", hits, ids, texts, [0, 2], _strips(ids), groups, dpi=50)
    width, height = figure_size(2)
    assert png_size(path) == (round(width * 50), round(height * 50))  # the planned size: nothing cropped
    assert count_colour(pixels(path), GREEN) > 200  # 2 queries x 3 streams of green frames
    # Every true clip ranked last: no green anywhere (no frame, no check mark, no green rank note).
    misses = {s: 1 - np.eye(n, dtype=np.float32) for s in ("fused", "pose", "rgb")}
    path = render_retrieval(tmp_path / "misses.png", misses, ids, texts, [0, 2, 4], _strips(ids), groups, dpi=50)
    assert png_size(path) == (round(width * 50), round(figure_size(3)[1] * 50))
    per_query = figure_size(3)[1] - figure_size(2)[1]  # each query adds one row's height, and no width
    assert per_query > 0 and figure_size(2)[1] - figure_size(1)[1] == pytest.approx(per_query)
    assert count_colour(pixels(path), GREEN) == 0


def test_similarity_figure_is_a_png_of_fixed_size_and_checks_its_shapes(tmp_path):
    rng = np.random.default_rng(0)
    words = ["[CLS]", *(f"word{i}" for i in range(30)), "[SEP]"]
    maps = TokenMaps(
        "clip7",
        "a sentence",
        words,
        rng.uniform(-1, 1, (64, 32)),
        rng.uniform(-1, 1, (64, 32)),
        np.arange(64),
        {"pose": 0.3, "rgb": 0.4},
        64,
    )
    path = render_similarity(tmp_path / "sim.png", maps, dpi=80)
    assert png_size(path) == (FIGURE_IN[0] * 80, FIGURE_IN[1] * 80)  # fixed: every pair's PNG the same size
    assert pixels(path).std() > 20  # a heatmap was drawn, not a blank page
    with pytest.raises(ValueError, match=r"clip7: rgb map is \(64, 31\), expected \(64, 32\)"):
        TokenMaps("clip7", "x", words, maps.pose, maps.rgb[:, :31], np.arange(64), {}, 64)


@pytest.mark.parametrize(
    "words",
    [
        ["<|startoftext|>", "the", "demonstration", "of", "international", "relationships", "<|endoftext|>"],
        ["<|startoftext|>", *["internationalisation</w>"] * 30, "<|endoftext|>"],
    ],
    ids=["8pt tokens", "6.5pt tokens"],
)
def test_every_label_of_the_similarity_figure_lies_inside_it(words):
    """Long word tokens stand tall under the heatmaps (rotated 90 degrees); fixed margins once pushed the
    "word token" axis label below the image's bottom edge. Every text is drawn inside the figure."""
    from pipeline.report.similarity_figure import similarity_figure

    rng = np.random.default_rng(0)
    maps = TokenMaps(
        "clip7",
        "the demonstration " * 12,
        words,
        rng.uniform(-1, 1, (40, len(words))),
        rng.uniform(-1, 1, (40, len(words))),
        np.arange(40),
        {"pose": 0.3, "rgb": 0.4},
        64,
    )
    fig = similarity_figure(maps, dpi=100)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inside = fig.bbox
    texts = [fig._suptitle] + [
        t
        for ax in fig.axes
        for t in (ax.xaxis.label, ax.yaxis.label, ax.title, *ax.get_xticklabels(), *ax.get_yticklabels())
    ]
    drawn = [t for t in texts if t is not None and t.get_text()]
    assert sum(t.get_text() == "word token" for t in drawn) == 2
    for text in drawn:
        box = text.get_window_extent(renderer)
        assert box.x0 >= inside.x0 and box.y0 >= inside.y0 and box.x1 <= inside.x1 and box.y1 <= inside.y1, (
            text.get_text(),
            box,
            inside,
        )
    panels = fig.axes[:2]
    assert all(ax.get_window_extent(renderer).height > 150 for ax in panels)  # the heatmaps keep their room


def test_figure_queries_are_evenly_spaced_or_named():
    ids = [f"s{i}" for i in range(10)]
    assert figure_indices(ids, 3, None) == [0, 4, 9]  # linspace_choice, fixed before any score is seen
    assert figure_indices(ids, 0, None) == []
    assert figure_indices(ids, 3, ["s7", "s2"]) == [7, 2]
    with pytest.raises(ParamError, match=r"evaluate.figure_samples: \['nope'\] are not clips"):
        figure_indices(ids, 3, ["s1", "nope"])


VAL_SELECTION = {
    "rule": "val",
    "split": "val",
    "epoch": 1,
    "value": 25.0,
    "on_test": False,
    "metric": "fused T2V R@1, per_clip protocol",
}
TEST_SELECTION = {**VAL_SELECTION, "rule": "best_test", "split": "test", "on_test": True}


def _evaluate_outputs(project: Path, out: Path, selection: dict = VAL_SELECTION) -> tuple[list[str], dict]:
    """Evaluate-shaped outputs over the project's test clips (fixed scores), and the train checkpoint's
    dict as the report reads it; `selection` as train recorded it in both metrics.json."""
    import pyarrow.parquet as pq

    table = pq.read_table(project / "manifests" / "probe.parquet").to_pylist()
    test = sorted((r for r in table if r["split"] == "test"), key=lambda r: r["sample_id"])
    ids, texts = [r["sample_id"] for r in test], [r["text"] for r in test]
    n = len(ids)
    fused = np.eye(n, dtype=np.float32) * 0.5 + np.linspace(0, 0.1, n, dtype=np.float32)[:, None]
    pose, rgb = fused.copy(), np.roll(np.eye(n, dtype=np.float32), 1, axis=0)  # rgb: every true clip ranked low
    out.mkdir(parents=True)
    np.savez_compressed(
        out / "similarity.npz", fused=fused, pose=pose, rgb=rgb, sample_ids=np.array(ids), texts=np.array(texts)
    )
    rng = np.random.default_rng(1)
    chosen = [0, n - 1]
    words = np.array([["[CLS]", "hello", "you", "[SEP]", ""]] * 2)
    np.savez_compressed(
        out / TOKEN_MAPS_FILE,
        pose=rng.uniform(-1, 1, (2, 6, 5)).astype(np.float32),
        rgb=rng.uniform(-1, 1, (2, 6, 5)).astype(np.float32),
        step_mask=np.array([[True] * 6, [True] * 4 + [False] * 2]),
        word_mask=words != "",
        tokens=words,
        sample_ids=np.array([ids[i] for i in chosen]),
        texts=np.array([texts[i] for i in chosen]),
    )
    streams = {s: retrieval_metrics(m) for s, m in (("fused", fused), ("pose", pose), ("rgb", rgb))}
    record = {
        "split": "test",
        "clips": n,
        "sentences": n,
        "chance_R@1": 100.0 / n,
        "tie_rule": "pessimistic",
        "grouping": "sentence_id",
        "distinct_texts": n,
        "split_source": f"how2sign data/sample/how2sign_sample_test.csv ({n} clips)",
        "repeated_texts": 0,
        "protocol": "per_clip",
        "streams": streams,
        "protocols": {"per_clip": streams},
        "selection": selection,
        "checkpoint": "runs/train/model.pt",
        "seconds": 12.5,
        "clips_note": f"{n} clips (1 with a hand never boxed (kept, that hand zero))",
    }
    (out / "metrics.json").write_text(json.dumps(record))
    train_dir = project / "runs" / "train"
    (train_dir / "plots").mkdir(parents=True)
    (train_dir / "plots" / "train.tsv").write_text("epoch\tstep\tloss\n1\t2\t3.5\n")
    (train_dir / "metrics.json").write_text(
        json.dumps(
            {
                "step": 2,
                "total_steps": 2,
                "epochs": 1,
                "seconds": 4.25,
                "clips": 4,
                "selection": selection,
                "final": {"epoch": 1, "loss": 3.5, "t2v_R@1": 25.0, "v2t_R@1": 50.0},
            }
        )
    )
    train = asdict(build_section(TrainParams, {"clip_checkpoint": "random", "out": "runs/train"}, "train"))
    weights = ["text tower, interaction towers, logit scale: random (explicit, train.clip_checkpoint: random; seed 42)"]
    return ids, {"params": train, "step": 2, "weights": weights}


def test_figures_and_report_from_evaluate_outputs(project):
    out = project / "runs" / "evaluate"
    ids, checkpoint = _evaluate_outputs(project, out)
    params = load_params(project / "params.yaml")
    (out / FIGURES_DIR).mkdir()
    (out / FIGURES_DIR / fine_grained_png(9)).write_bytes(b"an older run's figure")
    paths = write_figures(out, params)
    assert [p.name for p in paths] == [RETRIEVAL_PNG, fine_grained_png(1), fine_grained_png(2)]
    assert sorted(p.name for p in (out / FIGURES_DIR).iterdir()) == sorted(p.name for p in paths)
    width, height = figure_size(2)  # the two queries token_similarity.npz holds, at the default 100 dpi
    assert png_size(out / FIGURES_DIR / RETRIEVAL_PNG) == (round(width * 100), round(height * 100))
    # Real frames: the sample's clips are coloured signers, so the strips are far from a grey placeholder.
    assert pixels(out / FIGURES_DIR / RETRIEVAL_PNG).std() > 30
    assert png_size(out / FIGURES_DIR / fine_grained_png(2)) == (FIGURE_IN[0] * 100, FIGURE_IN[1] * 100)

    report = write_run_report(params, out, checkpoint).read_text()
    fused = retrieval_metrics(np.load(out / "similarity.npz")["fused"])
    assert f"| Fused (SEDS) | per clip (headline) | {fused['t2v']['R@1']:.1f} |" in report
    assert "| RGB only | per clip (headline) | 0.0 |" in report and "chance R@1 25.0 %" in report
    assert (
        "4 clips (1 with a hand never boxed (kept, that hand zero)), listed by "
        "how2sign data/sample/how2sign_sample_test.csv (4 clips); 4 sentence groups by "
        "sentence_id (4 distinct texts, 0 clips share their text with another clip)"
    ) in report
    assert "Model: epoch 1 of training, the best fused T2V R@1, per_clip protocol on split `val`" in report
    assert (
        "final loss 3.500; last evaluated on the selection split `val` (train.select: val) at epoch 1: "
        "T2V R@1 25.0 %, V2T R@1 50.0 %"
    ) in report
    assert "| SEDS initial weights | text tower, interaction towers, logit scale: random (explicit" in report
    assert "runs/train/model.pt, trained 2 steps" in report
    assert "| test | 4 | 4 |" in report and "| train | 4 | 4 |" in report  # manifest clips, probe ok
    probe_row = next(line for line in report.splitlines() if line.startswith("| probe |") and "computed" in line)
    assert re.match(
        r"\| probe \| \d+\.\d \| 1 run\(s\) ended, seconds = the union of their \[start, end\] spans "
        r"\(runs at the same time count once\); last: 12 computed, 0 reused, 0 failed in \d+\.\d s \| "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \|$",
        probe_row,
    ), probe_row
    assert "| train | 4.2 |" in report and "| evaluate | 12.5 |" in report
    assert f"Fine-grained Pose-Text and RGB-Text similarity, {ids[-1]}" in report
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert len(links) == 4 and all((out / link).is_file() for link in links), links  # 3 figures + train.tsv

    # evaluate.figure_queries 0: an empty token_similarity.npz, no figure, and the report says so.
    np.savez_compressed(out / TOKEN_MAPS_FILE, **no_token_maps())
    assert write_figures(out, params) == [] and not any((out / FIGURES_DIR).iterdir())
    assert "No figures (evaluate.figure_queries is 0" in write_run_report(params, out, checkpoint).read_text()


def test_a_model_selected_on_the_test_set_has_no_validation_numbers(project):
    """train.select best_test evaluates the test split after each epoch: report.md and the plot of those
    numbers name the selection split and say it is the test set; nothing calls them "validation"."""
    out = project / "runs" / "evaluate"
    _, checkpoint = _evaluate_outputs(project, out, TEST_SELECTION)
    report = write_run_report(load_params(project / "params.yaml"), out, checkpoint).read_text()
    assert "validation" not in report.lower()
    assert (
        "last evaluated on the selection split `test` (train.select: best_test, the test set) at epoch 1: "
        "T2V R@1 25.0 %"
    ) in report
    assert "R@1 on the selection split `test` (train.select: best_test, the test set), in val.tsv" in report
    assert "**Selected on the test set**" in report
    import yaml

    plots = {
        name: spec
        for entry in yaml.safe_load((Path(__file__).parents[2] / "dvc.yaml").read_text())["plots"]
        for name, spec in entry.items()
    }
    title = plots["runs/train/plots/val.tsv"]["title"]
    assert "validation" not in title.lower() and "selection split" in title


def test_figures_rank_as_metrics_json_says_whatever_params_say_now(project, monkeypatch):
    """`seds report figures` redraws from saved outputs after params may have changed: the top-3 figure
    takes the protocol, tie rule and grouping from metrics.json, the ones its metrics were counted with."""
    import pipeline.report.figures as figures

    out = project / "runs" / "evaluate"
    _evaluate_outputs(project, out)
    drawn = {}

    def capture(path, matrices, sample_ids, texts, queries, strips, groups, protocol, tie_rule, title):
        drawn.update(groups=groups.by, protocol=protocol, tie_rule=tie_rule, title=title)
        return path

    monkeypatch.setattr(figures, "render_retrieval", capture)
    metrics = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").write_text(json.dumps({**metrics, "tie_rule": "optimistic", "group_by": "text"}))
    params = load_params(
        project / "params.yaml",
        {
            "evaluate.protocol": "authors",
            "evaluate.tie_rule": "pessimistic",
            "evaluate.group_by": "sentence_id",
            "evaluate.split": "val",
        },
    )
    write_figures(out, params)
    assert (drawn["protocol"], drawn["tie_rule"], drawn["groups"]) == ("per_clip", "optimistic", "text")
    assert drawn["title"] == (
        "Text-to-video retrieval on split 'test' (per_clip protocol, optimistic ties): top 3 of 4 clips per query"
    )
    # A metrics.json from before `group_by` was recorded: its grouping's first word is the rule.
    (out / "metrics.json").write_text(json.dumps({**metrics, "protocol": "authors"}))
    write_figures(out, params)
    assert (drawn["protocol"], drawn["tie_rule"]) == ("authors", "pessimistic")
    assert drawn["groups"] == "text (no clip has a sentence_id)"  # rule sentence_id over clips without ids
    assert "top 3 of 4 sentence groups by sentence_id per query" in drawn["title"]
    (out / "metrics.json").write_text(json.dumps({"split": "test"}))
    with pytest.raises(figures.NotEvaluateMetrics, match=r"metrics.json lacks key 'grouping'"):
        write_figures(out, params)


def test_clips_without_video_get_a_reason_in_place_of_frames(project):
    from pipeline.report.clip_frames import clip_strips

    params = load_params(project / "params.yaml")
    import pyarrow.parquet as pq

    rows = pq.read_table(project / "manifests" / "probe.parquet").to_pylist()[:2]
    (Path(params["data"].root) / rows[1]["video_path"]).unlink()
    strips = clip_strips(
        project / "manifests", Path(params["data"].root), [r["sample_id"] for r in rows] + ["ghost"], 3
    )
    scale = 144 / min(rows[0]["height"], rows[0]["width"])  # STRIP_SHORT_SIDE
    frame_h, frame_w = round(rows[0]["height"] * scale), round(rows[0]["width"] * scale)
    assert strips[rows[0]["sample_id"]].shape == (frame_h, 3 * frame_w + 2 * 4, 3)  # 3 frames, 4 px gaps
    assert "missing_file" in strips[rows[1]["sample_id"]] and rows[1]["video_path"] in strips[rows[1]["sample_id"]]
    assert strips["ghost"] == f"no frames: ghost is not in {project / 'manifests'}/probe.parquet"


def test_report_commands_name_what_is_missing(project, capsys):
    assert main(["report", "run"]) == 2
    assert "runs/evaluate/metrics.json does not exist: run the evaluate stage first" in capsys.readouterr().err
    assert main(["report", "figures"]) == 2
    assert "runs/evaluate/similarity.npz does not exist" in capsys.readouterr().err


def _save_train_checkpoint(path: Path, plain: dict) -> dict:
    """A real train checkpoint (torch.save through pipeline.train.checkpoint) holding `plain` beside a
    small model's weights and its optimiser state, as the trainer writes them."""
    import torch

    from pipeline.train.checkpoint import load_checkpoint, save_checkpoint

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(path, {**plain, "model": model.state_dict(), "optimizer": optimizer.state_dict()})
    return load_checkpoint(path)


def test_checkpoint_info_reads_plain_values_and_shapes_without_torch_tensors(tmp_path):
    import argparse

    import torch

    from pipeline.report.checkpoint_info import NotReadable, TensorInfo, checkpoint_info

    plain = {
        "params": {"seed": 42, "gcn_widths": [8, 8]},
        "step": 7,
        "text_encoder": "tiny",
        "history": [{"loss": 1.5}],
    }
    full = _save_train_checkpoint(tmp_path / "model.pt", plain)
    info = checkpoint_info(tmp_path / "model.pt")
    assert {k: info[k] for k in plain} == plain and info["format"] == full["format"]
    assert info["model"] == {k: TensorInfo(tuple(v.shape)) for k, v in full["model"].items()}
    assert info["optimizer"]["param_groups"] == full["optimizer"]["param_groups"]

    torch.save({"format": full["format"], "args": argparse.Namespace(lr=1)}, tmp_path / "evil.pt")
    with pytest.raises(NotReadable, match=r"evil\.pt: refused global argparse\.Namespace"):
        checkpoint_info(tmp_path / "evil.pt")
    torch.save({"format": "other/1"}, tmp_path / "other.pt")
    with pytest.raises(NotReadable, match=r"other\.pt is not a seds train checkpoint"):
        checkpoint_info(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a zip")
    with pytest.raises(NotReadable, match=r"text\.pt: not a readable torch checkpoint"):
        checkpoint_info(tmp_path / "text.pt")


def test_report_commands_do_not_import_torch(project):
    """`seds report figures` and `seds report run` read files on disk: no trainer, no torch."""
    import subprocess
    import sys

    out = project / "runs" / "evaluate"
    _, plain = _evaluate_outputs(project, out)
    _save_train_checkpoint(project / "runs" / "train" / "model.pt", plain)
    script = (
        "import sys; from pipeline.cli import main; "
        "codes = [main(['report', 'figures']), main(['report', 'run'])]; "
        "print(codes, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[0, 0] False"
    report = (out / "report.md").read_text()
    assert "| SEDS model | runs/train/model.pt, trained 2 steps |" in report
    assert "random (explicit, train.clip_checkpoint: random; seed 42)" in report
