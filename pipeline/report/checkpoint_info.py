"""What a train checkpoint says about its training (params, step, selection, initial weights), read without torch.

`seds report run` rewrites report.md from files on disk; it must not import torch (seconds of start-up
and gigabytes of wheels for a page of Markdown). A train checkpoint (pipeline/train/checkpoint.py) is
torch's zip format: `<name>/data.pkl` holds the plain values and refers to each tensor's storage by a
persistent id. This reads data.pkl with an unpickler that admits exactly what such a file names
(OrderedDict, torch's tensor rebuild function and storage classes), turns every tensor into a
`TensorInfo` (its shape) without reading a byte of its storage, and refuses any other global: nothing
is executed. The weights themselves are only ever loaded by torch.load(weights_only=True).
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.safe_unpickle import RestrictedUnpickler
from pipeline.train.outputs import CHECKPOINT_FORMAT


class NotReadable(UserError, ValueError):
    """A file that is not a torch zip checkpoint of plain values and tensors."""


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the checkpoint, seen from outside: its shape (elements never read)."""

    shape: tuple[int, ...]


def _rebuild_tensor(storage: Any, offset: int, size: tuple[int, ...], *rest: Any) -> TensorInfo:
    return TensorInfo(tuple(size))


class _Storage:
    """Stands for torch's typed storage classes (FloatStorage, ...) in persistent ids."""


def _checkpoint_global(module: str, name: str) -> Any:
    """What a train checkpoint may name: ordered dicts, tensors (as their shape) and storages; None (refused)
    for anything else."""
    if (module, name) == ("collections", "OrderedDict"):
        return OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
        return _rebuild_tensor
    if module == "torch" and name.endswith("Storage"):
        return _Storage
    return None


def checkpoint_info(path: Path) -> dict[str, Any]:
    """The checkpoint's top-level dict with each tensor as a TensorInfo. NotReadable names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (run the train stage first: seds train)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                raise NotReadable("not a torch zip checkpoint (no single data.pkl in it)")
            value = RestrictedUnpickler(
                archive.read(names[0]),
                _checkpoint_global,
                NotReadable,
                "a train checkpoint holds plain values and tensors only",
                lambda pid: None,
            ).load()  # a storage reference: its bytes never read
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, TypeError) as err:
        raise NotReadable(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from None
    except NotReadable as err:
        raise NotReadable(f"{path}: {err}") from None
    if not isinstance(value, dict) or value.get("format") != CHECKPOINT_FORMAT:
        raise NotReadable(f"{path} is not a seds train checkpoint (format {CHECKPOINT_FORMAT})")
    return value
