"""Where a training step's time goes: TensorFlow op types (or single ops) ranked by self time.

Runs the `arnn bench` step (`model.fit` on a `ReprogrammedModel`, random task images) under
the TensorFlow profiler and prints the host self time per op type or op, so changes to the step
can be judged by what they remove. Reads the trace with TensorFlow's own converter (the one
TensorBoard's profile plugin uses); no extra packages.

    .venv/bin/python benchmarks/profile_step.py --batch-size 32 --steps 10 [--by operation] [--top 20] [--json]
"""

from __future__ import annotations

import argparse
import glob
import json
import tempfile

import tensorflow as tf
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

from arnn_tf.bench import benchmark_model_and_data


def op_times(xplane_path: str, by: str = "type") -> dict[str, float]:
    """Host self time in microseconds per op type (``by="type"``) or per op (``"operation"``)."""
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data([xplane_path], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"TensorFlow could not read the trace: {data!r}")
    table = json.loads(data)[0]  # a Google Charts DataTable: "cols" with ids, "rows" of {"c": [{"v": ...}]}
    column = {col["id"]: index for index, col in enumerate(table["cols"])}
    totals: dict[str, float] = {}
    for row in table["rows"]:
        cells = [cell["v"] if cell else None for cell in row["c"]]
        if cells[column["host_or_device"]] == "Host":
            kind = cells[column[by]]
            totals[kind] = totals.get(kind, 0.0) + float(cells[column["total_self_time"]])
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--by", choices=("type", "operation"), default="type",
                        help="rank op types (default) or single ops (which layer costs most)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model, data = benchmark_model_and_data(args.backbone, args.batch_size, args.image_size)
    model.fit(data, steps_per_epoch=3, shuffle=False, verbose=0)  # trace and warm up outside the profile
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(data, steps_per_epoch=args.steps, shuffle=False, verbose=0)
        tf.profiler.experimental.stop()
        (xplane,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        totals = op_times(xplane, args.by)
    step_ms = {kind: us / 1000 / args.steps for kind, us in totals.items() if kind != "IDLE"}
    ranked = sorted(step_ms.items(), key=lambda item: -item[1])
    all_ms = sum(step_ms.values())
    if args.json:
        print(json.dumps({"batch_size": args.batch_size, f"ms_per_step_by_{args.by}": dict(ranked)}))
        return
    width = max(len(kind) for kind, _ in ranked[:args.top]) + 2
    print(f"{'op ' + args.by:<{width}}{'ms/step':>10}{'share':>8}")
    for kind, ms in ranked[:args.top]:
        print(f"{kind:<{width}}{ms:>10.1f}{ms / all_ms:>8.1%}")
    print(f"{'all ops (summed over threads)':<{width}}{all_ms:>10.1f}")


if __name__ == "__main__":
    main()
