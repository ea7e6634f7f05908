"""DVC stage `gt_keypoints`: the same as `seds run gt_keypoints` (see pipeline/sample/gt_stage.py)."""

from pipeline.commands.run import stage_main
from pipeline.sample.gt_stage import GroundTruthKeypointsStage

if __name__ == "__main__":
    raise SystemExit(stage_main(GroundTruthKeypointsStage))
