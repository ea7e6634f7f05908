"""The item stages the `seds` commands know by name, and the one pose+rgb pairing.

The runner (pipeline/runner) imports no stage: the commands hand it a stage class, and for a shared
decode the `module:function` that decodes each clip once. This table names them for `seds run NAME`,
`seds finalize` and `seds queue`; the DVC entry points (stages/*.py) import their stage classes
directly, so each DVC stage's code dependencies are the import closure of its entry point
(pipeline/devtools/dvcdeps.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.runner.stage import Stage

ITEM_STAGES: dict[str, str] = {
    "probe": "pipeline.probe.stage:ProbeStage",
    "pose": "pipeline.pose.stage:PoseStage",
    "select": "pipeline.keypoints.stage:SelectStage",
    "rgb": "pipeline.rgb.stage:RgbStage",
    "gt_keypoints": "pipeline.sample.gt_stage:GroundTruthKeypointsStage",
}
# Pose and rgb read the same frames of every clip, so they run over one decode per clip: as `seds run pose
# rgb`, as the DVC stage `extract` and as `seds queue slurm pose rgb`. The only stages that pair.
SHARED_DECODE_MEMBERS = ("pose", "rgb")
SHARED_DECODE_PROCESSOR = "pipeline.extract.shared_decode:process_shared"
SHARED_DVC_STAGE = "extract"


def item_stage(name: str) -> type[Stage]:
    """The stage class named `name` (ValueError naming the item stages for any other)."""
    from pipeline.runner.stage import load_ref

    try:
        return load_ref(ITEM_STAGES[name])
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; item stages: {', '.join(ITEM_STAGES)}") from None


def shared_decode(names: list[str]) -> bool:
    """Whether `names` are the stages that run over one decode per clip (pose and rgb, in any order)."""
    return sorted(dict.fromkeys(names)) == sorted(SHARED_DECODE_MEMBERS)
