"""DVC stage `pose`: the same as `seds run pose` (see pipeline/pose/stage.py)."""

from pipeline.commands.run import stage_main
from pipeline.pose.stage import PoseStage

if __name__ == "__main__":
    raise SystemExit(stage_main(PoseStage))
