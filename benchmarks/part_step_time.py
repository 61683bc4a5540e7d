"""Training-step time against the number of parts of one task: does a step cost the same at
2 parts and at 100? (Target: within 1.2x.)

Each part is a generated task of random 28 x 28 grayscale images of 10 classes (what
PermutedMNIST's parts look like), so it runs offline; the backbone is untrained
(``--weights none``), which does not change a step's cost. For each number of parts the
script builds the model a run builds (`arnn_tf.runs.build_model`), trains it with
`WhiteBoxTrainer` and takes the median time of a step after the first ``--warmup``; the
counts take turns for ``--rounds`` rounds (the machine's speed drifts), and it prints each
count's median over the rounds, one JSON line each.

    python benchmarks/part_step_time.py --parts 2 100
"""

import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.recipes import Recipe
from arnn_tf.runs import build_model
from arnn_tf.tasks.parts import MultiPartTask
from arnn_tf.training.white_box import WhiteBoxTrainer


def generated_part(index: int, examples: int) -> ImageTask:
    """A part of ``examples`` random 28 x 28 x 1 images, labels 0..9."""
    rng = np.random.default_rng(index)
    images = rng.integers(0, 256, (examples, 28, 28, 1)).astype("uint8")
    labels = (np.arange(examples) % 10).astype("int32")
    return ImageTask(f"part{index}", (28, 28, 1), tuple(str(c) for c in range(10)),
                     lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))


class StepClock(keras.callbacks.Callback):
    """Wall time of each training step after the first ``warmup`` (tracing, caches)."""

    def __init__(self, warmup: int) -> None:
        super().__init__()
        self.warmup, self.seen, self.seconds, self._start = warmup, 0, [], 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen > self.warmup:
            self.seconds.append(time.perf_counter() - self._start)


def step_seconds(parts: int, args: argparse.Namespace) -> float:
    """Median seconds of a timed training step on a task of ``parts`` parts."""
    task = MultiPartTask("+".join(f"part{i}" for i in range(parts)),
                         tuple(generated_part(i, args.examples) for i in range(parts)))
    recipe = Recipe(backbone=args.backbone, weights="none", batch_size=args.batch_size,
                    frame_size=args.frame_size, label_map=args.label_map,
                    steps=args.warmup + args.steps)
    clock = StepClock(args.warmup)
    WhiteBoxTrainer().fit(build_model(recipe, task), task, recipe, verbose=False,
                          callbacks=[clock])
    return float(np.median(clock.seconds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=int, nargs="+", default=[2, 100])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--frame-size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--label-map", default="first")
    parser.add_argument("--examples", type=int, default=200, help="train images of each part")
    parser.add_argument("--warmup", type=int, default=20,
                        help="untimed steps first (a step's graph settles on shapes it has seen)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each count timed this many times, the counts taking turns")
    args = parser.parse_args()
    rounds = {count: [] for count in args.parts}
    for _ in range(args.rounds):
        for count in args.parts:
            rounds[count].append(step_seconds(count, args))
    for count, seconds in rounds.items():
        print(json.dumps({"parts": count, "backbone": args.backbone, "frame_size": args.frame_size,
                          "batch_size": args.batch_size,
                          "seconds_per_step": round(float(np.median(seconds)), 4),
                          "rounds": [round(s, 4) for s in seconds]}), flush=True)


if __name__ == "__main__":
    main()
