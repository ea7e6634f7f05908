#!/usr/bin/env bash
# The GPU subset of the benchmarks, in one call on a lent GPU machine, within 10 minutes:
#   pose_gpu.py   native RTMPose-WholeBody -m and -l: batched crops vs one frame per call (+ crops-only floor)
#   rgb_gpu.py    the rgb engine vs per-window decode + fp32 forward, vs decode only, at the paper's sizes
#   train_gpu.py  SEDS training at batch 128: AMP vs fp32 steps/s and peak memory
#   decode_gpu.py NVDEC vs the CPU decoder on How2Sign-like 720p clips: features within the tolerance
#                 of docs/gpu.md (fails the script otherwise), decode frames/s both ways, and the fused
#                 720p pipeline (decode -> RTMPose-l -> I3D) in clips/s with NVDEC vs CPU decoding
# Results go to $OUT (pose_gpu.json, rgb_gpu.json, train_gpu.json, decode_gpu.json, gpu.log). The box
# has torch, numpy, opencv but no transformers/pyyaml/PyAV/PyNvVideoCodec: run scripts/gpu_wheels.sh
# here first and carry .whl and .clips720 (the 720p clips it renders),
# e.g. `run(command="bash benchmarks/gpu.sh", carry=[".whl", ".clips720"], timeout_s=600)`.
# Each part has its own time limit, so one slow part cannot starve the others.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
log="$OUT/gpu.log"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  if [ -d .whl ]; then
    python3 -m pip install --quiet --no-index --find-links .whl --no-deps .whl/*.whl || echo "wheel install failed"
  fi
  status=0
  timeout 150 python3 benchmarks/pose_gpu.py --frames 256 --batch-sizes 64 128 256 --out "$OUT" || status=$?
  timeout 100 python3 benchmarks/decode_gpu.py --videos .clips720/sample/sentence_clips --decoders 12 --out "$OUT" || status=$?
  timeout 200 python3 benchmarks/rgb_gpu.py --clips 32 --naive-clips 3 --decoders 12 --out "$OUT" || status=$?
  timeout 150 python3 benchmarks/train_gpu.py --steps 150 --batch 128 --out "$OUT" || status=$?
  echo "gpu.sh: exit status $status"
  exit $status
} 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
