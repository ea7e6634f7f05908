"""Top-3 text-to-video retrieval, as the SEDS paper's Figure 4: for each query sentence, the three
candidates each stream ranks first (Pose-only, RGB-only, fused), a strip of frames per clip, the true one
marked.

Layout (inches, so a figure's pixel size is known before it is drawn: `figure_size`): a title band,
then per query a header (the sentence, and per stream the rank of its true candidate) and three rows,
one per retrieved candidate; one column per stream. A retrieved clip is labelled with its rank, score and
own sentence, so a wrong retrieval shows what it says instead; the true one gets a thick green frame and
a check mark, the others a thin grey frame. Candidates, order and ranks come from the metrics' own
`T2VRetrieval` (pipeline/train/metrics.py) under the same protocol, sentence groups and tie rule: under
the authors' protocol a candidate is a sentence group, shown by its best clip for the query, and the
rank is the one the metrics counted.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.train.groups import SentenceGroups
from pipeline.train.metrics import T2VRetrieval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STREAM_TITLES = {"pose": "Pose only", "rgb": "RGB only", "fused": "Fused (SEDS)"}
TOP_K = 3
COLUMN_IN = 4.2  # width of one stream's column
MARGIN_IN = 0.2  # left, right and bottom margins (sizes are whole pixels at 50 and 100 dpi)
TITLE_IN = 0.5  # figure title and column headings
QUERY_IN = 0.7  # a query's sentence (two lines at most) and its true clips' ranks
RANK_IN = 1.0  # one retrieved clip: label line and frame strip
CORRECT = "#1a9641"
WRONG = "#9e9e9e"
CHECK = "\u2713"


def figure_size(queries: int) -> tuple[float, float]:
    """(width, height) in inches of a figure of `queries` queries and the three streams."""
    width = 3 * COLUMN_IN + 2 * MARGIN_IN
    return width, TITLE_IN + queries * (QUERY_IN + TOP_K * RANK_IN) + MARGIN_IN


def frame_strip(frames: np.ndarray, gap: int = 4) -> np.ndarray:
    """Frames (F, H, W, 3) uint8 side by side with white gaps of `gap` px: one image (H, F*W + gaps, 3)."""
    frames = np.asarray(frames)
    height, width = frames.shape[1:3]
    strip = np.full((height, len(frames) * (width + gap) - gap, 3), 255, np.uint8)
    for i, frame in enumerate(frames):
        strip[:, i * (width + gap) : i * (width + gap) + width] = frame
    return strip


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "\u2026"


def _fit(label, max_px: float) -> None:
    """Shorten a drawn text (ending it with an ellipsis) until it is at most `max_px` wide, so a long
    sentence never runs into the next column."""
    renderer = label.figure.canvas.get_renderer()
    text = label.get_text()
    width = label.get_window_extent(renderer).width
    if width > max_px:  # first cut in proportion to the overshoot, then a character at a time
        text = text[: max(1, int(len(text) * max_px / width))]
    while width > max_px and len(text) > 1:
        text = text[:-1].rstrip()
        label.set_text(text + "\u2026")
        width = label.get_window_extent(renderer).width


def render_retrieval(
    path: Path,
    matrices: dict[str, np.ndarray],
    sample_ids: list[str],
    texts: list[str],
    queries: list[int],
    strips: dict[str, np.ndarray | str],
    groups: SentenceGroups,
    protocol: str = "authors",
    tie_rule: str = "pessimistic",
    dpi: int = 100,
    title: str = "",
) -> Path:
    """Write the figure (`retrieval_figure`) as PNG."""
    fig = retrieval_figure(matrices, sample_ids, texts, queries, strips, groups, protocol, tie_rule, dpi, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def retrieval_figure(
    matrices: dict[str, np.ndarray],
    sample_ids: list[str],
    texts: list[str],
    queries: list[int],
    strips: dict[str, np.ndarray | str],
    groups: SentenceGroups,
    protocol: str = "authors",
    tie_rule: str = "pessimistic",
    dpi: int = 100,
    title: str = "",
) -> "Figure":
    """The figure, drawn. `matrices`: stream -> (N, N) [clip, sentence]; `queries`: clips whose sentences
    are the queries; `groups`, `protocol`, `tie_rule`: as the metrics ranked them; `strips`: sample id ->
    frame strip (H, W, 3) uint8, or a message saying why there is none (a clip whose video is missing
    still gets its label, with the message in place of frames)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    streams = [s for s in ("pose", "rgb", "fused") if s in matrices]
    retrieval = {s: T2VRetrieval(matrices[s], groups, protocol) for s in streams}
    true_ranks = {s: table.ranks(tie_rule) for s, table in retrieval.items()}
    candidates = "group" if protocol == "authors" else "clip"
    width, height = figure_size(len(queries))
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)

    def box(left_in: float, top_in: float, w_in: float, h_in: float):
        """An axes at inches from the top-left corner (matplotlib counts from the bottom)."""
        return fig.add_axes((left_in / width, 1 - (top_in + h_in) / height, w_in / width, h_in / height))

    n = len(retrieval[streams[0]].true)
    fig.text(
        MARGIN_IN / width,
        1 - 0.08 / height,
        title or f"Text-to-video retrieval: top {TOP_K} of {n} {candidates}s",
        ha="left",
        va="top",
        fontsize=11,
        weight="bold",
    )
    fig.text(
        1 - MARGIN_IN / width,
        1 - 0.1 / height,
        f"{CHECK} and green frame: the query's own clip; number: the similarity it was ranked by",
        ha="right",
        va="top",
        fontsize=8,
        color="#333333",
    )
    for c, stream in enumerate(streams):
        fig.text(
            (MARGIN_IN + (c + 0.5) * COLUMN_IN) / width,
            1 - 0.32 / height,
            STREAM_TITLES[stream],
            ha="center",
            va="top",
            fontsize=10,
            weight="bold",
        )
    wrap = int(3 * COLUMN_IN * 72 / (9 * 0.55))  # characters per line of 9 pt text across all columns
    message_chars = int(COLUMN_IN * 72 / (7 * 0.6))
    top = TITLE_IN
    for qn, query in enumerate(queries):
        lines = textwrap.wrap(f"Query {qn + 1} ({sample_ids[query]}): \u201c{texts[query]}\u201d", wrap) or [""]
        if len(lines) > 2:
            lines = [lines[0], _clip(" ".join(lines[1:]), wrap)]
        if qn:
            fig.add_artist(
                Line2D(
                    [MARGIN_IN / width, 1 - MARGIN_IN / width],
                    [1 - (top - 0.03) / height] * 2,
                    color="#bbbbbb",
                    linewidth=0.8,
                )
            )
        fig.text(
            MARGIN_IN / width,
            1 - (top + 0.05) / height,
            "\n".join(lines),
            ha="left",
            va="top",
            fontsize=9,
            linespacing=1.3,
        )
        for c, stream in enumerate(streams):
            rank = int(true_ranks[stream][retrieval[stream].query_of(query)])
            note = f"true {candidates}: rank {rank} of {n}"
            fig.text(
                (MARGIN_IN + (c + 0.5) * COLUMN_IN) / width,
                1 - (top + QUERY_IN - 0.04) / height,
                note,
                ha="center",
                va="bottom",
                fontsize=8,
                color=CORRECT if rank <= TOP_K else "#b2182b",
            )
        top += QUERY_IN
        for c, stream in enumerate(streams):
            table = retrieval[stream]
            for r, hit in enumerate(table.top(table.query_of(query), TOP_K, tie_rule)):
                left = MARGIN_IN + c * COLUMN_IN + 0.08
                row_top = top + r * RANK_IN
                mark = f" {CHECK}" if hit.correct else ""
                label = f"{r + 1}.{mark} {hit.score:.3f}  {sample_ids[hit.clip]}: {texts[hit.clip]}"
                _fit(
                    fig.text(
                        left / width,
                        1 - (row_top + 0.02) / height,
                        label,
                        ha="left",
                        va="top",
                        fontsize=7.5,
                        color=CORRECT if hit.correct else "black",
                        weight="bold" if hit.correct else "normal",
                    ),
                    (COLUMN_IN - 0.16) * dpi,
                )
                ax = box(left, row_top + 0.2, COLUMN_IN - 0.16, RANK_IN - 0.27)
                ax.set_xticks([])
                ax.set_yticks([])
                strip = strips.get(sample_ids[hit.clip], "no frames")
                if isinstance(strip, str):
                    ax.set_facecolor("#eeeeee")
                    ax.text(
                        0.5,
                        0.5,
                        _clip(strip, message_chars),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="#555555",
                        transform=ax.transAxes,
                    )
                else:
                    ax.imshow(strip, aspect="equal", interpolation="antialiased")
                    ax.set_anchor("W")
                for spine in ax.spines.values():
                    spine.set_visible(False)
                colour, lw = (CORRECT, 3.0) if hit.correct else (WRONG, 0.8)
                # The frame around the image itself (the axes box can be wider than a short strip).
                ax.add_patch(
                    Rectangle(
                        (0, 0),
                        1,
                        1,
                        transform=ax.transAxes if isinstance(strip, str) else _image_transform(ax, strip),
                        fill=False,
                        edgecolor=colour,
                        linewidth=lw,
                        clip_on=False,
                    )
                )
        top += TOP_K * RANK_IN
    return fig


def _image_transform(ax, strip: np.ndarray):
    """Unit-square coordinates of an imshow'd image (its extent), for drawing a frame around it."""
    from matplotlib.transforms import Affine2D

    h, w = strip.shape[:2]
    return Affine2D().scale(w, h).translate(-0.5, -0.5) + ax.transData
