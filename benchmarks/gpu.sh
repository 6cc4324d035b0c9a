#!/usr/bin/env bash
# Training steps of every installed method (CoOp, EPT, MULTI-LANE, RAVE with CLIP-LIT's network, and
# whatever else plugins offer) on ViT-B/16 with random weights, in bf16 and fp32 (TF32 matmuls), with
# and without torch.compile. Writes OUT_DIR/gpu-bench.json: step time, images/s, peak memory, FLOPs,
# achieved TFLOP/s and MFU against the card's dense peak (H100, H200, A100). On a machine without CUDA
# the same code runs at tiny sizes with the CUDA-only parts skipped (what CI runs).
#   benchmarks/gpu.sh OUT_DIR [adapt bench gpu options, e.g. --no-compile --methods coop ept]
set -euo pipefail
if [[ $# -lt 1 || $1 == -* ]]; then
    echo "usage: $0 OUT_DIR [adapt bench gpu options]" >&2
    exit 2
fi
out=$1
shift
mkdir -p "$out"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.csv" || true
fi
adapt bench gpu --out "$out" "$@"
