"""DVC stage `manifest`: annotations -> manifests/manifest.parquet (the same as `seds manifest`)."""

import sys

from pipeline.cli import command_main
from pipeline.commands import manifest as command

if __name__ == "__main__":
    raise SystemExit(command_main(command, ["manifest", *sys.argv[1:]]))
