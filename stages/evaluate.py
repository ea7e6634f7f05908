"""DVC stage `evaluate`: the same as `seds evaluate` (see pipeline/train/evaluate.py)."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["evaluate", *sys.argv[1:]]))
