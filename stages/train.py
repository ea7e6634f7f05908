"""DVC stage `train`: the same as `seds train` (see pipeline/train/loop.py)."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
