"""DVC stage `probe`: the same as `seds run probe` (see pipeline/video/probe.py)."""

from pipeline.commands.run import stage_main

if __name__ == "__main__":
    raise SystemExit(stage_main("probe"))
