"""The capacity curve: accuracy of one program against the number of data sets it serves.

PermutedMNIST-N (``permuted:N:folder:MNIST``: N fixed pixel permutations of MNIST, each a
data set of its own with its own ten classes) on one frame program of a frozen
EfficientNet-Lite0, for N = 1, 2, 4, 8, 10 (the target), 16, ... 100, at equal examples per
part: ``--steps-per-part`` steps of 32 examples for every part (a run of N parts trains N
times as many steps, its batches drawn uniformly over the parts), with the ``mnist``
recipe's settings (the digit resized to the whole frame, the program over it, cosine decay)
on a ``--frame-size`` frame. Each N runs with each ``--maps`` label map: ``first`` (fixed
disjoint blocks of ImageNet classes, the idea's own map: 100 parts use all 1,000) and
``linear`` (a learned map per part). N = 1 is the part alone.

Every run resumes where it stopped: rerun the same command to go on; ``--max-minutes`` bounds
one invocation (the run it stops is checkpointed). A finished point is appended to
``--results`` (committed, so a new checkout keeps the curve) and not run again. At the end it
prints a Markdown table (mean, worst part and task-unknown accuracy, seconds) and, with
matplotlib installed (the ``bench`` extra), draws the curve.

    tar -xzf ../shared/data/mnist-png.tar.gz -C ~/.cache/arnn-data
    python benchmarks/capacity_curve.py --mnist ~/.cache/arnn-data/mnist --max-minutes 50
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from arnn_tf.recipes import RECIPES
from arnn_tf.runs import train

PARTS = (1, 2, 4, 8, 10, 16, 32, 64, 100)
RESULTS = Path("benchmarks/results")


def subset_folder(mnist: Path, out: Path, per_class: dict[str, int]) -> Path:
    """A folder of links to the first ``per_class[split]`` images of each class of ``mnist``
    (train and test), so every part holds a small table and a test of known size."""
    for split, count in per_class.items():
        for class_dir in sorted((mnist / split).iterdir()):
            target = out / split / class_dir.name
            target.mkdir(parents=True, exist_ok=True)
            for image in sorted(class_dir.iterdir())[:count]:
                link = target / image.name
                if not link.exists():
                    link.symlink_to(image.resolve())
    return out


def read_points(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """The finished points recorded in ``path`` (one JSON row a line), by map and parts."""
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["map"], r["parts"]): r for r in rows}


def run_point(args: argparse.Namespace, folder: Path, parts: int, label_map: str,
              deadline: float) -> dict[str, Any] | None:
    """Trains (or resumes) one point; its row, also appended to ``args.results``, once
    finished, else None."""
    out = args.out / f"{label_map}-{parts}"
    minutes = (deadline - time.monotonic()) / 60
    if minutes < 1:
        return None
    recipe = RECIPES["mnist"].replace(
        name=f"capacity-{label_map}",
        task=f"permuted:{parts}:folder:{folder}",
        steps=args.steps_per_part * parts,
        label_map=label_map,
        frame_size=args.frame_size,
        image_size=args.frame_size,
    )
    metrics = train(recipe, out, max_minutes=minutes, verbose=False)
    point = {"parts": parts, "map": label_map, **row(metrics)}
    print(json.dumps(point), flush=True)
    if metrics.get("stopped_by_time"):
        return None
    with args.results.open("a") as results:
        results.write(json.dumps({**point, "date": time.strftime("%Y-%m-%d")}) + "\n")
    return point


def row(metrics: dict[str, Any]) -> dict[str, Any]:
    """One point's figures: a run of one part is its own worst part and reads with its task
    unknown as with it known (it has only its own classes)."""
    mean = metrics["test_accuracy"]
    return {
        "mean": round(mean, 4),
        "worst": round(metrics.get("test_accuracy_worst_part", mean), 4),
        "task_unknown": round(metrics.get("test_accuracy_task_unknown", mean), 4),
        "seconds": round(metrics["total_seconds"], 1),
        "steps": metrics["steps"],
    }


def plot(points: dict[tuple[str, int], dict[str, Any]], path: Path) -> None:
    """The curve: accuracy against the number of parts, task known and unknown, per map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for label_map, colour in (("first", "tab:blue"), ("linear", "tab:orange")):
        done = sorted(n for m, n in points if m == label_map)
        if not done:
            continue
        for key, style, what in (("mean", "-o", "task known"), ("task_unknown", "--s",
                                                                   "task unknown")):
            values = [points[label_map, n][key] for n in done]
            axes.plot(done, values, style, color=colour, label=f"{label_map} map, {what}")
    axes.set_xscale("log")
    axes.set_xticks(PARTS, [str(n) for n in PARTS])
    axes.set_xlabel("data sets on one program (PermutedMNIST-N)")
    axes.set_ylabel("mean test accuracy")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, required=True, help="the unpacked MNIST folder")
    parser.add_argument("--out", type=Path, default=Path("runs/capacity"))
    parser.add_argument("--parts", type=int, nargs="+", default=list(PARTS))
    parser.add_argument("--maps", nargs="+", default=["first", "linear"])
    parser.add_argument("--steps-per-part", type=int, default=100)
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--frame-size", type=int, default=112)
    parser.add_argument("--max-minutes", type=float, default=60.0)
    parser.add_argument("--plot", type=Path, default=RESULTS / "capacity_curve.png")
    parser.add_argument("--results", type=Path, default=RESULTS / "capacity_curve.jsonl")
    args = parser.parse_args()
    deadline = time.monotonic() + 60 * args.max_minutes
    per_class = {"train": args.train_per_class, "test": args.test_per_class}
    folder = subset_folder(args.mnist, args.out / "mnist-subset", per_class)
    points = read_points(args.results)
    for parts in args.parts:
        for label_map in args.maps:
            if (label_map, parts) not in points:
                point = run_point(args, folder, parts, label_map, deadline)
                if point is not None:
                    points[label_map, parts] = point
    print("| parts | map | mean | worst part | task unknown | seconds |")
    print("|---:|---|---:|---:|---:|---:|")
    for (label_map, parts), p in sorted(points.items(), key=lambda item: item[0][::-1]):
        print(f"| {parts} | {label_map} | {p['mean']:.4f} | {p['worst']:.4f} | "
              f"{p['task_unknown']:.4f} | {p['seconds']:.0f} |")
    try:
        plot(points, args.plot)
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot drawn")


if __name__ == "__main__":
    main()
