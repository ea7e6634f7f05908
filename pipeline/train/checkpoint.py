"""Train checkpoints: model weights, optimiser state, progress and the resolved params, in one file.

A checkpoint is a dict of tensors and plain values (str, int, float, bool, None, lists, dicts), so it
loads with torch.load(weights_only=True); nothing is ever unpickled. It is written to a temporary
name, fsynced and renamed (then its folder is fsynced), so neither a kill nor a power cut leaves a
half-written file.

    {"format": "seds-train/1", "config": SEDSConfig as dict, "params": TrainParams as dict,
     "identity": the run identity (params that a resumed run must share), "model": state_dict,
     "optimizer": state_dict | None, "scaler": state_dict | None, "step": int, "epoch": int,
     "epoch_step": int, "history": [per-epoch records], "text_encoder": description}
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import UserError
from pipeline.store.layout import write_then_publish
from pipeline.train.outputs import CHECKPOINT_FORMAT as FORMAT


class NotACheckpoint(UserError, ValueError):
    """A file that is not a seds train checkpoint."""


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_then_publish(path, lambda tmp: torch.save({"format": FORMAT, **payload}, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (run the train stage first: seds train)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise NotACheckpoint(f"{path} does not load as a weights-only torch checkpoint: {err}") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NotACheckpoint(f"{path} is not a seds train checkpoint (format {FORMAT})")
    return data
