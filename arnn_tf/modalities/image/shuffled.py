"""The paper's shuffled-pixels ablation for any task: one fixed pixel permutation.

Shuffling destroys the spatial structure the ImageNet network relies on but keeps every
pixel's information, so it tests how much reprogramming depends on that structure.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from arnn_tf.modalities.image.task import ImageTask

PERMUTATION_SEED = 0
"""Seed of the fixed permutation when none is named; a task's own (not the run seed) so that
every run, split and checkpoint sees the same permutation."""


def shuffled_task(
    task: ImageTask, name: str | None = None, seed: int = PERMUTATION_SEED
) -> ImageTask:
    """``task`` with one fixed permutation of pixel positions, drawn by ``seed``, the same
    for every image and channel, train and test alike (seeds 1 to N make PermutedMNIST-N)."""
    height, width, channels = task.image_shape
    permutation = tf.constant(np.random.default_rng(seed).permutation(height * width))

    def permute(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels = tf.reshape(image, (height * width, channels))
        return tf.reshape(tf.gather(pixels, permutation), task.image_shape), label

    def load(split: str) -> tf.data.Dataset:
        return task.examples(split).map(permute, num_parallel_calls=tf.data.AUTOTUNE)

    return ImageTask(
        name=name or f"shuffled:{task.name}",
        image_shape=task.image_shape,
        class_names=task.class_names,
        _load=load,
        parts=task.parts,
    )
