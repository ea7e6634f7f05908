"""DVC stage `extract`: the pose and rgb stages over one decode per clip, the same as `seds run pose rgb`
(pipeline/runner/together.py). Each writes its own store (cache/pose, cache/rgb) and view."""

from pipeline.commands.run import stage_main

if __name__ == "__main__":
    raise SystemExit(stage_main("extract", stages=["pose", "rgb"]))
