"""Finding and importing mmpose/mmdet with mmcv-lite: their shipped config files and registries.

Kept apart from the backends so that nothing imports mmpose/mmdet (slow, and absent on GPU boxes)
unless the `mmpose` backend or the `mmdet` box is asked for. `pipeline.compat.mmcv_ops.install()`
answers mmcv's compiled-op imports with placeholders (RTMPose never calls one; the detector's NMS is
done with OpenCV instead, see pipeline/pose/detector.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class OpenMMLabMissing(RuntimeError):
    """mmpose/mmdet are not installed, but a param asked for them."""


def package_dir(name: str, needed_by: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise OpenMMLabMissing(
            f"{needed_by} needs the {name} package, which is not installed here: install "
            "requirements/openmmlab.txt (docs/install.md), or use pose.backend: native and "
            "pose.box: whole_frame or two_pass, which need neither mmpose nor mmdet"
        )
    return Path(spec.submodule_search_locations[0])


def rtmpose_config(name: str) -> Path:
    """mmpose's shipped config file of an RTMPose-WholeBody model."""
    return (
        package_dir("mmpose", "pose.backend: mmpose")
        / ".mim"
        / "configs"
        / "wholebody_2d_keypoint"
        / "rtmpose"
        / "coco-wholebody"
        / f"{name}.py"
    )


def wholebody_metainfo_file() -> Path:
    return (
        package_dir("mmpose", "pose.backend: mmpose") / ".mim" / "configs" / "_base_" / "datasets" / "coco_wholebody.py"
    )


def detector_config(name_or_path: str) -> Path:
    """A detector config: a file path, or the name of one in mmpose's demo/mmdetection_cfg."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".py":
        return path
    return package_dir("mmpose", "pose.box: mmdet") / ".mim" / "demo" / "mmdetection_cfg" / f"{name_or_path}.py"


def import_registries() -> None:
    """Register mmdet's and mmpose's models and transforms (mmdet's CSPNeXt is RTMPose's backbone).

    Never `mmpose.apis`/`mmpose.utils.register_all_modules`: they import mmpose.visualization, which
    needs torchvision, and torchvision's CUDA build cannot load beside the CPU torch here."""
    package_dir("mmdet", "pose.backend: mmpose and pose.box: mmdet")
    from pipeline.compat import mmcv_ops

    mmcv_ops.install()
    import mmdet.datasets.transforms  # noqa: F401
    import mmdet.models  # noqa: F401
    import mmpose.codecs  # noqa: F401
    import mmpose.datasets.transforms  # noqa: F401
    import mmpose.models  # noqa: F401
