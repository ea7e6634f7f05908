#!/usr/bin/env bash
# Wheels (and clips) the GPU benchmarks need beyond what a bare GPU box has (Python 3.12, CUDA torch, numpy,
# h5py, pyarrow, opencv, tqdm): the same versions as this project's .venv, for CPython 3.12 on
# x86-64 Linux, into .whl/ (git-ignored), so `run` can carry them (benchmarks/gpu.sh installs them
# offline). Needs the package index, not the GPU box.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
versions=$($py -m pip freeze | grep -iE '^(transformers|huggingface.hub|tokenizers|safetensors|regex|pyyaml|packaging|typer|filelock|fsspec|hf.xet|click|rich|shellingham|typing.extensions|httpx|anyio|certifi|h11|httpcore|idna|markdown.it.py|pygments|mdurl|blake3)==')
# GPU decoding (the nvdec extra of pyproject.toml): not in the CPU venv, so pinned here. PyAV (36 MB)
# and decord (14 MB) would pass the 64 MiB a run may carry, so the How2Sign-like H.264 clips that
# benchmarks/decode_gpu.py needs are rendered here instead, into .clips720/ (carry it too).
versions="$versions pynvvideocodec==2.2.4"
mkdir -p .whl
$py -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .whl $versions
$py -c 'from pathlib import Path; from pipeline.sample.generate import how2sign_like_clips; how2sign_like_clips(Path(".clips720"), 4)'
du -sh .whl .clips720
