"""DVC stage `select`: the same as `seds run select` (see pipeline/keypoints/stage.py)."""

from pipeline.commands.run import stage_main
from pipeline.keypoints.stage import SelectStage

if __name__ == "__main__":
    raise SystemExit(stage_main(SelectStage))
