#!/usr/bin/env bash
# Distributed `arnn tune` on one machine: one chief (Keras Tuner's oracle, a gRPC server on
# 127.0.0.1) and two workers that ask it for trials, train them and report back. All three
# run the same command with the same --out; only KERASTUNER_TUNER_ID differs. Uses the tiny
# untrained backbone and the generated counting task, so it needs no downloads.
#
#   tuning/distributed_demo.sh [OUT]        # default OUT: /tmp/arnn-tune-distributed
#
# Environment: PYTHON (default .venv/bin/python), ARNN (default "$PYTHON -m arnn_tf.cli.main"),
# PORT (default 8470), TRIALS (default 6), STEPS (default 30).
set -euo pipefail

PYTHON=${PYTHON:-.venv/bin/python}
ARNN=${ARNN:-"$PYTHON -m arnn_tf.cli.main"}
OUT=${1:-/tmp/arnn-tune-distributed}
export KERASTUNER_ORACLE_IP=127.0.0.1
export KERASTUNER_ORACLE_PORT=${PORT:-8470}
export TF_CPP_MIN_LOG_LEVEL=2

mkdir -p "$OUT"
tune=(tune --task counting --backbone tiny_cnn --weights none --tuner random
      --max-trials "${TRIALS:-6}" --steps "${STEPS:-30}" --val-size 200 --out "$OUT")

pids=()
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_all EXIT

KERASTUNER_TUNER_ID=chief $ARNN "${tune[@]}" >"$OUT/chief.log" 2>&1 &
chief=$!
pids+=("$chief")
for worker in tuner0 tuner1; do
    KERASTUNER_TUNER_ID=$worker $ARNN "${tune[@]}" >"$OUT/$worker.log" 2>&1 &
    pids+=("$!")
done

status=0
for pid in "${pids[@]:1}"; do wait "$pid" || status=$?; done
wait "$chief" || status=$?   # the chief exits once every trial has ended (it polls every 20 s)
trap - EXIT
for log in chief tuner0 tuner1; do
    # with --steps each trial is one Keras epoch, so one progress line with val_accuracy per trial trained
    echo "$log: $(grep -cE "^[0-9]+/[0-9]+ - .* val_accuracy: " "$OUT/$log.log" || true) trials trained"
done
[ "$status" -eq 0 ] && cat "$OUT/leaderboard.csv" && tail -n 1 "$OUT/chief.log"
exit "$status"
