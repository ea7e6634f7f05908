"""DVC stage `rgb`: the same as `seds run rgb` (see pipeline/rgb/stage.py)."""

from pipeline.commands.run import stage_main
from pipeline.rgb.stage import RgbStage

if __name__ == "__main__":
    raise SystemExit(stage_main(RgbStage))
