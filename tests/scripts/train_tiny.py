"""Trains a tiny program under a given strategy and saves W: run as a separate process by
tests/test_distribute.py, because logical devices and TF_CONFIG must be set before
TensorFlow starts."""

import argparse
import os
import sys

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--strategy", required=True)
parser.add_argument("--logical-cpus", type=int, default=1)
parser.add_argument("--out", required=True)
parser.add_argument("--steps", type=int, default=6)
args = parser.parse_args()

import tensorflow as tf  # noqa: E402

if args.logical_cpus > 1:
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

from arnn_tf.backbones import build_backbone  # noqa: E402
from arnn_tf.modalities.image.model import build_reprogrammed_model  # noqa: E402
from arnn_tf.modalities.image.task import ImageTask  # noqa: E402
from arnn_tf.training.distribute import is_chief, make_strategy  # noqa: E402
from arnn_tf.recipes import Recipe  # noqa: E402
from arnn_tf.training.white_box import WhiteBoxTrainer  # noqa: E402

rng = np.random.default_rng(0)
images = rng.integers(0, 256, (64, 12, 12, 1)).astype("uint8")
labels = rng.integers(0, 4, 64).astype("int32")
task = ImageTask("toy", (12, 12, 1), ("a", "b", "c", "d"),
            lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))

devices = [f"/cpu:{i}" for i in range(args.logical_cpus)] if args.strategy == "mirrored" else None
strategy = make_strategy(args.strategy, devices=devices)
with strategy.scope():
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=1), (12, 12, 1), 4, l2=1e-3)
    recipe = Recipe(steps=args.steps, batch_size=16, learning_rate=0.05)
    WhiteBoxTrainer().fit(model, task, recipe, shuffle=False, verbose=False)
if is_chief(strategy):
    np.save(args.out, model.program.weight.numpy())
print("replicas", strategy.num_replicas_in_sync, file=sys.stderr)
os._exit(0)  # multi-worker runtimes can hang at interpreter exit
