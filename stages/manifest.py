"""DVC stage `manifest`: annotations -> manifests/manifest.parquet (the same as `seds manifest`)."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["manifest", *sys.argv[1:]]))
