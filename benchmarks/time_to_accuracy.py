"""Time-to-accuracy curve: test accuracy against training time and steps for a task.

Trains with `arnn_tf.training.white_box.WhiteBoxTrainer` (what `arnn train` runs) and every
``--eval-every`` steps measures accuracy on the first ``--eval-images`` test images; the
final point is the full test split. Prints one JSON line per point.

    tar -xzf ../shared/data/mnist-png.tar.gz -C ~/.cache/arnn-data
    python benchmarks/time_to_accuracy.py --task folder:$HOME/.cache/arnn-data/mnist --steps 1500
"""

import argparse
import json
import time

import keras

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.tasks.specs import get_task
from arnn_tf.training.evaluation import evaluate_program
from arnn_tf.recipes import Recipe
from arnn_tf.training.white_box import WhiteBoxTrainer


class AccuracyCurve(keras.callbacks.Callback):
    """Evaluates a test subset every few steps, excluding evaluation time from the clock."""

    def __init__(self, test_data, every):
        super().__init__()
        self.test_data, self.every = test_data, every
        self.train_seconds, self.steps, self._last = 0.0, 0, 0.0

    def on_train_begin(self, logs=None):
        self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.every == 0:
            self.train_seconds += time.perf_counter() - self._last
            accuracy = self.model.evaluate(self.test_data, verbose=0, return_dict=True)["accuracy"]
            print(json.dumps({"steps": self.steps, "train_seconds": round(self.train_seconds, 1),
                              "test_subset_accuracy": round(accuracy, 4)}), flush=True)
            self._last = time.perf_counter()

    def on_train_end(self, logs=None):
        if self.steps % self.every:
            self.train_seconds += time.perf_counter() - self._last


parser = argparse.ArgumentParser()
parser.add_argument("--task", required=True)
parser.add_argument("--backbone", default="efficientnet_lite0")
parser.add_argument("--steps", type=int, default=1500)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--l2", type=float, default=1e-6)
parser.add_argument("--image-size", type=int)
parser.add_argument("--full-program", action="store_true")
parser.add_argument("--eval-every", type=int, default=250)
parser.add_argument("--eval-images", type=int, default=2000)
args = parser.parse_args()

task = get_task(args.task)
image_size = None if args.image_size is None else (args.image_size, args.image_size)
model = build_reprogrammed_model(build_backbone(args.backbone), task.image_shape, task.num_classes, l2=args.l2,
                                 image_size=image_size, full_program=args.full_program)
subset = task.dataset("test", 100).unbatch().take(args.eval_images).batch(100).cache()
curve = AccuracyCurve(subset, args.eval_every)
recipe = Recipe(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr)
result = WhiteBoxTrainer().fit(model, task, recipe, callbacks=[curve], verbose=False)
final = evaluate_program(model, task, verbose=0)
print(json.dumps({"steps": result.steps, "train_seconds": round(curve.train_seconds, 1),
                  "test_accuracy": round(final["accuracy"], 4), "test_examples": task.num_examples("test"),
                  "images_per_second": round(result.images_per_second, 2)}), flush=True)
