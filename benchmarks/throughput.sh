#!/usr/bin/env bash
# Training-step throughput of arnn-tf versus the two peers, EfficientNet-Lite0, 32x32 task
# images, batches 8/32/64, float32 and bfloat16. One JSON line per run on stdout. The TF loop
# runs twice: with TensorFlow's default oneDNN setting and with oneDNN forced on.
#   bash benchmarks/throughput.sh [STEPS]     (from the repository root; needs /tmp/torchvenv,
#   see peer_torch_loop.py)
set -euo pipefail
steps=${1:-20}
py=.venv/bin/python
torch_py=${TORCH_PYTHON:-/tmp/torchvenv/bin/python}
for batch in 8 32 64; do
  for precision in float32 mixed_bfloat16; do
    .venv/bin/arnn bench --batch-size "$batch" --steps "$steps" --precision "$precision" --json 2>/dev/null | tail -n 1
    $py benchmarks/peer_tf_loop.py --batch-size "$batch" --steps "$steps" --precision "$precision" 2>/dev/null | tail -n 1
    TF_ENABLE_ONEDNN_OPTS=1 $py benchmarks/peer_tf_loop.py --batch-size "$batch" --steps "$steps" --precision "$precision" 2>/dev/null | tail -n 1
    torch_precision=$([ "$precision" = float32 ] && echo float32 || echo bfloat16)
    $torch_py benchmarks/peer_torch_loop.py --batch-size "$batch" --steps "$steps" --precision "$torch_precision" 2>/dev/null | tail -n 1
  done
done
