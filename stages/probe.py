"""DVC stage `probe`: the same as `seds run probe` (see pipeline/probe/stage.py)."""

from pipeline.commands.run import stage_main
from pipeline.probe.stage import ProbeStage

if __name__ == "__main__":
    raise SystemExit(stage_main(ProbeStage))
