"""DVC stage `extract`: the pose and rgb stages over one decode per clip, the same as `seds run pose rgb`
(pipeline/runner/together.py, pipeline/extract/shared_decode.py). Each writes its own store
(cache/pose, cache/rgb) and view."""

import pipeline.extract.shared_decode  # noqa: F401  (what decodes each clip once: a dependency of this stage)
from pipeline.commands.run import stage_main
from pipeline.pose.stage import PoseStage
from pipeline.rgb.stage import RgbStage

if __name__ == "__main__":
    raise SystemExit(stage_main(PoseStage, RgbStage))
