#!/bin/bash
# The README's commands, one by one, with its example paths replaced by local data, each
# line's exit status, time and last accuracy written to $OUT/results.txt:
#   bash benchmarks/readme_commands.sh DATA [OUT]
# DATA holds photos-451x300/{train,test}/<class>/*.jpg (any folder of photos), trec/ and mnist/
# (the unpacked archives). Long runs are cut short with --steps where the README gives none;
# the TF Serving container (docker) and `arnn query` against it are not run here.
set -u
D=${1:?usage: readme_commands.sh DATA [OUT]}; L=${2:-runs/readme}; A=${ARNN:-arnn}
mkdir -p "$L"
step() {
    name=$1; shift; s=$(date +%s); "$@" > "$L/$name.log" 2>&1; rc=$?
    accuracy=$(grep -o 'test accuracy [0-9.]*' "$L/$name.log" | tail -1)
    echo "$name rc=$rc $(( $(date +%s) - s ))s $accuracy" >> "$L/results.txt"
}
photo=$(find "$D/photos-451x300/test" -name '*.jpg' | sort | head -2)
step flowers $A train --task folder:$D/photos-451x300 --out runs/flowers
step evaluate $A evaluate --program runs/flowers/program
step predict $A predict --program runs/flowers/program $photo
step export $A export --program runs/flowers/program --out exports/flowers
step trec $A train --task text:$D/trec --out runs/trec --steps 50
step three $A train --task "text:$D/trec+counting+folder:$D/mnist" --out runs/three --steps 20
step pmnist10 $A train --recipe mnist --task permuted:10:folder:$D/mnist --steps 20 \
    --out runs/pmnist10
step tune $A tune --task counting --tuner hyperband --max-trials 2 --out runs/tune
step tuned $A train --recipe runs/tune/best_recipe.json --steps 20 --out runs/tuned
step blackbox $A train --steps 400 --black-box --out runs/readme-bb
step export_backbone $A export --backbone efficientnet_lite0 --out exports/backbone
cat "$L/results.txt"
