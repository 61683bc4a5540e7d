#!/usr/bin/env bash
# arnn-tf against the plain PyTorch eager loop, float32, one batch size, several alternating
# runs (each in a fresh process), then the median of each and the ratio of the medians.
# Single runs on this shared 2-vCPU machine vary by up to 20 %, so one pair cannot settle a
# ratio near a target.
#   bash benchmarks/torch_ratio.sh [REPEATS] [STEPS] [BATCH] > benchmarks/results/torch-ratio-DATE.jsonl
# (from the repository root; needs /tmp/torchvenv, see peer_torch_loop.py). The summary goes to stderr.
set -euo pipefail
repeats=${1:-5}
steps=${2:-20}
batch=${3:-32}
torch_py=${TORCH_PYTHON:-/tmp/torchvenv/bin/python}
lines=$(mktemp)
for _ in $(seq "$repeats"); do
  .venv/bin/arnn bench --batch-size "$batch" --steps "$steps" --json 2>/dev/null | tail -n 1 | tee -a "$lines"
  $torch_py benchmarks/peer_torch_loop.py --batch-size "$batch" --steps "$steps" 2>/dev/null | tail -n 1 | tee -a "$lines"
done
.venv/bin/python - "$lines" >&2 <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
ours = [r["images_per_second"] for r in runs if "peer" not in r]
torch = [r["images_per_second"] for r in runs if r.get("peer") == "pytorch_eager_loop"]
print(f"arnn-tf img/s {sorted(ours)}  median {statistics.median(ours):.2f}")
print(f"pytorch img/s {sorted(torch)}  median {statistics.median(torch):.2f}")
print(f"ratio of medians {statistics.median(ours) / statistics.median(torch):.2f}x; "
      f"worst pairing (slowest arnn-tf / fastest PyTorch) {min(ours) / max(torch):.2f}x")
PY
rm -f "$lines"
