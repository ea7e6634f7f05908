"""Import-time stand-ins for `mmcv.ops`, so mmpose's RTMPose code imports with mmcv-lite.

Why this exists: mmpose 1.3.2 imports `mmcv.ops` at import time (its EDPose head, and mmdet's box
utilities that RTMPose's CSPNeXt backbone is registered beside), but RTMPose never calls a compiled
op. mmcv-lite ships no compiled `mmcv._ext`, mmcv has no wheels on PyPI, and building its ops takes
about an hour on 2 cores. So the default install keeps mmcv-lite, and this module installs a
meta-path finder that answers `import mmcv.ops` (and any `mmcv.ops.<sub>`) with placeholder modules.
Every name looked up on them is a placeholder class: importing, subclassing and registering work;
instantiating or calling one raises `MissingCompiledOp` naming the op and the way out.

Nothing here is used when a full mmcv with compiled ops is installed (`install()` does nothing then),
which is what a cluster user who wants the mmdet detector installs (docs/install.md).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

_PREFIX = "mmcv.ops"


class MissingCompiledOp(RuntimeError):
    """A compiled mmcv op was called, but only mmcv-lite is installed."""


def _placeholder(qualified_name: str) -> type:
    def refuse(cls, *args, **kwargs):
        raise MissingCompiledOp(
            f"{qualified_name} needs mmcv's compiled ops, which this install does not have "
            "(mmcv-lite). Use pose.backend: native and pose.box: whole_frame or two_pass, or install "
            "a full mmcv 2.1.0 built for your torch/CUDA (docs/install.md, 'Optional: full mmcv')."
        )

    return type(
        qualified_name.rsplit(".", 1)[-1], (), {"__new__": refuse, "__module__": qualified_name.rsplit(".", 1)[0]}
    )


class _PlaceholderModule(types.ModuleType):
    """A module whose every attribute is a placeholder op (cached, so identity is stable)."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = _placeholder(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _PlaceholderLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__path__ = []  # a package, so `mmcv.ops.<anything>` resolves through us too
        return module

    def exec_module(self, module):
        module.__dict__["IS_PLACEHOLDER"] = True


class MmcvOpsFinder(importlib.abc.MetaPathFinder):
    """Serves `mmcv.ops` and its submodules before the real (uncompilable) ones are tried."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == _PREFIX or fullname.startswith(_PREFIX + "."):
            return importlib.machinery.ModuleSpec(fullname, _PlaceholderLoader(), is_package=True)
        return None


def has_compiled_ops() -> bool:
    """True when a full mmcv (with `mmcv._ext`) is importable, so no stand-ins are needed."""
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except (ImportError, ValueError):
        return False


def install() -> bool:
    """Put the finder first on sys.meta_path unless real ops exist; return whether it is active."""
    if has_compiled_ops():
        return False
    if not any(isinstance(f, MmcvOpsFinder) for f in sys.meta_path):
        stale = [name for name in sys.modules if name == _PREFIX or name.startswith(_PREFIX + ".")]
        for name in stale:  # a failed earlier `import mmcv.ops` leaves nothing usable behind
            del sys.modules[name]
        sys.meta_path.insert(0, MmcvOpsFinder())
    return True
