#!/usr/bin/env bash
# One program for many data sets and two modalities, against each part alone.
#
# Trains one shared program on PARTS (joined with "+") and, for each part, a single-task
# program with the same recipe. A shared step's batch is drawn across the parts (uniformly, a
# seeded sampler), so the shared run trains STEPS times the number of parts steps and every
# part sees as many examples, in expectation, as it does alone in STEPS steps. The single-task runs read the shared run's recipe
# from its saved program, so they keep its settings even if the `text` recipe changes. Each
# run resumes where it stopped (rerun the script after an interruption); finished runs are
# only re-read. One JSON line per run.
#   bash benchmarks/one_for_all.sh [STEPS] [OUT]      (from the repository root)
# The frame is FRAME (default 224, the frame of the results in EXPERIMENTS.md; the `text`
# recipe's own is 112).
# Data: the archives of ../shared/data unpacked into $DATA (default ~/.cache/arnn-data).
set -euo pipefail
steps=${1:-600}
frame=${FRAME:-224}
out=${2:-runs/one_for_all}
data=${DATA:-$HOME/.cache/arnn-data}
arnn=${ARNN:-.venv/bin/arnn}
parts=(
  "text:$data/trec"
  "text:$data/sst2"
  "counting"
  "folder:$data/mnist"
  "shuffled:folder:$data/mnist"
  "folder:$data/cifar10"
)
joined=$(IFS=+; echo "${parts[*]}")
run() {  # NAME TASK RECIPE [OPTION...]: train (or resume) RECIPE on TASK, print its metrics
  $arnn train --recipe "$3" --task "$2" --steps "$steps" "${@:4}" --out "$out/$1" \
    > "$out/$1.log" 2>&1
  python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(json.dumps({'run': sys.argv[2],
    'test_accuracy': m['test_accuracy'], 'per_part': m.get('test_accuracy_per_task'),
    'steps': m['steps'], 'seconds': m['seconds']}))" "$out/$1/metrics.json" "$1"
}
mkdir -p "$out"
run shared "$joined" text --frame-size "$frame" --steps $((steps * ${#parts[@]}))
for i in "${!parts[@]}"; do  # each part alone, with exactly the shared run's recipe
  run "alone-$i" "${parts[$i]}" "$out/shared/program"
done
