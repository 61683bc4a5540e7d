#!/usr/bin/env bash
# A learned-map result and its control, one after the other: `arnn train ARGS`, then the same
# with `--freeze-program` (W, and a text task's patch table, held at their start: the map
# alone). Prints one JSON line per run and the program's own share (the difference).
#   bash benchmarks/with_control.sh OUT ARG...     (from the repository root)
# e.g. bash benchmarks/with_control.sh runs/mnist-epoch --recipe mnist --task folder:$MNIST \
#        --epochs 1
# Each run resumes where it stopped (rerun after an interruption); finished runs are re-read.
set -euo pipefail
out=$1
shift
arnn=${ARNN:-.venv/bin/arnn}
mkdir -p "$out"
$arnn train "$@" --out "$out/program" > "$out/program.log" 2>&1
$arnn train "$@" --freeze-program --out "$out/control" > "$out/control.log" 2>&1
python3 - "$out" <<'PY'
import json, sys
runs = {
    name: json.load(open(f"{sys.argv[1]}/{name}/metrics.json")) for name in ("program", "control")
}
for name, metrics in runs.items():
    print(json.dumps({"run": name, "test_accuracy": metrics["test_accuracy"],
                      "steps": metrics["steps"], "seconds": metrics["total_seconds"]}))
share = runs["program"]["test_accuracy"] - runs["control"]["test_accuracy"]
print(json.dumps({"program_adds": round(share, 4)}))
PY
