#!/usr/bin/env bash
# Create .venv and install the pipeline with every pinned dependency, on a fresh machine, no manual steps.
# Usage: scripts/setup.sh [VENV_DIR]      (default .venv; reruns are cheap: pip skips what is there)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
python=${PYTHON:-python3}
start=$(date +%s)

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }  # pip noise on this kind

# torch first and alone: 2.13.0 is the CPU wheel on local disk; any later resolution that 2.13.0
# satisfies then installs no CUDA build (several GB).
quiet "${pip[@]}" torch==2.13.0
quiet "${pip[@]}" -r requirements/lock.txt
quiet "${pip[@]}" --no-deps --no-build-isolation --no-binary xtcocotools -r requirements/openmmlab.txt
quiet "${pip[@]}" --no-deps --no-build-isolation -e .

# Import check: what the stages import, and mmpose's/mmdet's registries as the mmpose backend loads them.
"$venv/bin/python" -c "import pipeline.cli, pipeline.pose.stage, pipeline.rgb.stage, pipeline.train.loop
from pipeline.pose.openmmlab import import_registries; import_registries()"
echo "setup: $venv ready in $(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1)"
