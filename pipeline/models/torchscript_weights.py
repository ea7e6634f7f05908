"""The tensors of a TorchScript archive, read without running it.

OpenAI publishes CLIP's weights as TorchScript archives (e.g. ViT-B-32.pt). torch.load refuses them
with weights_only=True, and torch.jit.load would run the archive's code. This reader opens the zip
itself and unpickles its `data.pkl` through a restricted unpickler: scripted modules become inert
attribute bags, tensors are rebuilt from the archive's raw storages, and any other global (anything
that could run code) is refused by name. Walking the bags gives {dotted name: tensor}, the names
torch.jit's state_dict would give, plus any plain tensor attributes the modules hold.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from pipeline.safe_unpickle import RestrictedUnpickler

# torch's legacy storage class names, as TorchScript's pickler writes them, -> element dtype
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
# TorchScript's typed-list builders (torch/jit/_pickle.py): each returns its argument. A scripted
# module's list attributes go through them (Conv2d's padding list: build_intlist).
LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")


class NotTorchScript(ValueError):
    """A file that is not a TorchScript archive, or asks for more than tensors and modules."""


class ScriptObject:
    """Stands for any scripted module or object of the archive: keeps the attribute dict pickle builds."""

    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise NotTorchScript(f"a scripted object's state is a {type(state).__name__}, not an attribute dict")
        self.attributes = state


class _StorageType:
    def __init__(self, name: str):
        self.dtype = STORAGE_DTYPES[name]


def _rebuild_tensor(
    storage: tuple[torch.UntypedStorage, torch.dtype], offset: int, size: tuple, stride: tuple, *_: Any
) -> torch.Tensor:
    untyped, dtype = storage
    return torch.empty((0,), dtype=dtype).set_(untyped, offset, size, stride)


def _same_list(data: list) -> list:
    return data


def _archive_global(module: str, name: str) -> Any:
    """What a weights archive may name: scripted modules (inert bags), storages, tensors, ordered dicts and
    TorchScript's typed-list builders; None (refused) for anything else."""
    if module.startswith("__torch__"):
        return ScriptObject
    if module == "torch" and name in STORAGE_DTYPES:
        return _StorageType(name)
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
        return _rebuild_tensor
    if (module, name) == ("collections", "OrderedDict"):
        return OrderedDict
    if module == "torch.jit._pickle" and name in LIST_BUILDERS:
        return _same_list
    return None


def _storage_reader(archive: zipfile.ZipFile, root: str):
    def read(pid: Any) -> tuple[torch.UntypedStorage, torch.dtype]:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise NotTorchScript(f"unexpected persistent id {pid!r}")
        _, kind, key, _location, _numel = pid
        raw = bytearray(archive.read(f"{root}/data/{key}"))
        return (
            torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
        ), kind.dtype

    return read


def _walk(obj: ScriptObject, prefix: str, out: dict[str, torch.Tensor]) -> None:
    for name, value in obj.attributes.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, ScriptObject):
            _walk(value, f"{prefix}{name}.", out)


def read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    """{dotted attribute name: tensor} of the archive at `path` (module docstring)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise NotTorchScript(f"{path}: not a zip archive ({err})") from None
    with archive:
        data = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(data) != 1 or not any(n.endswith("/constants.pkl") for n in archive.namelist()):
            raise NotTorchScript(f"{path}: not a TorchScript archive (no <root>/data.pkl and constants.pkl)")
        root = data[0].split("/")[0]
        top = RestrictedUnpickler(
            archive.read(data[0]),
            _archive_global,
            NotTorchScript,
            "a weights archive needs only modules and tensors",
            _storage_reader(archive, root),
        ).load()
    if not isinstance(top, ScriptObject):
        raise NotTorchScript(f"{path}: its data.pkl holds a {type(top).__name__}, not a scripted module")
    out: dict[str, torch.Tensor] = {}
    _walk(top, "", out)
    return out
