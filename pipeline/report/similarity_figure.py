"""Fine-grained similarity of one (clip, sentence) pair, as the SEDS paper's Figure 5: heatmaps of the
cosine between every clip step and every word token, Pose-Text beside RGB-Text.

These are the token similarities the FILIP scores are built from (pipeline/models/seds/losses.py):
T2V lets each word pick the steps it matches best, V2T each step its words. Only valid tokens are
drawn (padded steps and words are cut away); the word axis shows the text encoder's own tokens
([CLS], [SEP] and word pieces included, since the model scores them too). Both panels share one colour
scale, so a darker Pose-Text panel means the pose stream matches the words less than RGB does.
A dot marks the step each word matches best (the peak its T2V softmax leans on).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_IN = (11.0, 7.0)  # fixed, so every pair's PNG has the same size
PANELS = (("pose", "Pose-Text"), ("rgb", "RGB-Text"))


@dataclass(frozen=True)
class TokenMaps:
    """One pair's token similarities: `pose` and `rgb` (steps, words) cosines over valid tokens only,
    the word tokens, and the pair's (clip, sentence) retrieval scores per stream."""

    sample_id: str
    text: str
    words: list[str]
    pose: np.ndarray
    rgb: np.ndarray
    steps: np.ndarray  # clip step index of each row (steps kept by the step mask)
    scores: dict[str, float]  # stream -> retrieval similarity of the pair (similarity.npz diagonal)
    total_steps: int  # steps the model takes (train.steps); a short clip fills fewer

    def __post_init__(self) -> None:
        shape = (len(self.steps), len(self.words))
        for name in ("pose", "rgb"):
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"{self.sample_id}: {name} map is {getattr(self, name).shape}, expected {shape} "
                    "(valid steps x valid words)"
                )


def display_token(token: str) -> str:
    """A tokenizer's token as a reader wants it on an axis: CLIP's end-of-word mark dropped."""
    return token[:-4] if token.endswith("</w>") and len(token) > 4 else token


def similarity_figure(maps: TokenMaps, dpi: int = 100) -> "Figure":
    """One pair's Pose-Text and RGB-Text heatmaps on a figure of FIGURE_IN inches. Laid out by
    matplotlib's constrained layout when drawn: the margins grow to hold the rotated word tokens and the
    axis labels under them (fixed margins cut "word token" off below long tokens), the panels shrink."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGURE_IN, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 3, width_ratios=(1, 1, 0.05))
    both = np.concatenate([maps.pose.ravel(), maps.rgb.ravel()])
    vmin, vmax = (float(both.min()), float(both.max())) if both.size else (-1.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 1e-3, vmax + 1e-3
    n_steps, n_words = len(maps.steps), len(maps.words)
    stride = next(k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n_steps <= 9 * k)
    step_ticks = list(range(0, n_steps, stride))
    word_size = 8 if n_words <= 20 else 6.5
    image = None
    for col, (stream, name) in enumerate(PANELS):
        ax = fig.add_subplot(grid[0, col])
        values = getattr(maps, stream)
        image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        if n_steps and n_words:
            best = values.argmax(axis=0)
            ax.scatter(np.arange(n_words), best, s=10, c="white", edgecolors="black", linewidths=0.5)
        score = maps.scores.get(stream)
        ax.set_title(name + (f"  (retrieval score {score:.3f})" if score is not None else ""), fontsize=10)
        ax.set_xticks(range(n_words))
        ax.set_xticklabels([display_token(w) for w in maps.words], rotation=90, fontsize=word_size)
        ax.set_xlabel("word token", fontsize=9)
        ax.set_yticks(step_ticks)
        if col == 0:
            ax.set_yticklabels([str(int(maps.steps[i])) for i in step_ticks], fontsize=8)
            filled = "" if n_steps == maps.total_steps else f": {n_steps} of {maps.total_steps} hold data"
            ax.set_ylabel(f"clip step{filled}", fontsize=9)
        else:
            ax.set_yticklabels([])
    bar = fig.colorbar(image, cax=fig.add_subplot(grid[0, 2]))
    bar.set_label("cosine similarity", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    heading = textwrap.fill(f"{maps.sample_id}: \u201c{maps.text}\u201d", 150)
    fig.suptitle(
        f"Fine-grained similarity of a true pair (dots: each word's best step)\n{heading}",
        fontsize=10,
        x=0.02,
        ha="left",
    )
    return fig


def render_similarity(path: Path, maps: TokenMaps, dpi: int = 100) -> Path:
    """Write one pair's Pose-Text and RGB-Text heatmaps as a PNG of FIGURE_IN inches at `dpi`."""
    fig = similarity_figure(maps, dpi)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path
