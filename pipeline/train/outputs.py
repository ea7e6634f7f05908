"""The files train and evaluate write, by name: shared with pipeline/report, which reads them.

Plain constants and no imports, so the report side (figures, report.md) uses them without importing
the trainer, the evaluator or torch, and neither side imports the other for a file name.
"""

from __future__ import annotations

CHECKPOINT_FORMAT = "seds-train/1"  # the "format" entry of every train checkpoint
MODEL_FILE = "model.pt"  # train.out: final weights + resolved params (a train checkpoint)
METRICS_FILE = "metrics.json"  # train.out and evaluate.out: `dvc metrics`
PLOTS_DIR = "plots"  # train.out: one row per epoch, for `dvc plots`
TRAIN_PLOT = "train.tsv"
VAL_PLOT = "val.tsv"
SIMILARITY_FILE = "similarity.npz"  # evaluate.out: (N, N) similarities per stream, sample_ids, texts
TOKEN_MAPS_FILE = "token_similarity.npz"  # evaluate.out: the figure pairs' step x word cosines
