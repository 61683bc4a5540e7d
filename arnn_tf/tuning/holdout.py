"""The held-out slice of the train split that scores trials, so the test split stays unseen.

Choosing hyper-parameters by test accuracy would make the reported test accuracy optimistic;
trials are scored on train images set aside instead, and the test split is used once, on
the best program.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from arnn_tf.settings import MAX_VALIDATION_SIZE
from arnn_tf.tasks.base import Task

VALIDATION_FRACTION = 0.1


def holdout_split(task: Task, size: int, seed: int = 0) -> Task:
    """``task`` with ``size`` seeded-random train images moved into its "test" split.

    Trials are scored on this held-out slice so that the real test split plays no part in
    choosing hyper-parameters. The choice is a numpy permutation, the same whatever
    TensorFlow's seeds, and the two parts never overlap. A task of several parts holds out
    ``size`` images in all, shared among its parts in proportion to their train splits.
    """
    if len(task.part_tasks) > 1:
        return _parts_holdout(task, size, seed)
    total = task.num_examples("train")
    if not 0 < size < total:
        raise ValueError(
            f"the validation slice must hold 1..{total - 1} of the {total} train images, got {size}"
        )
    held = np.zeros(total, dtype=bool)
    held[np.random.default_rng(seed).choice(total, size=size, replace=False)] = True
    mask = tf.constant(held)

    def load(split: str) -> tf.data.Dataset:
        """The train split's held-out images as "test", the rest as "train"."""
        keep = split == "test"

        def in_split(index: tf.Tensor, example: Any) -> tf.Tensor:
            return tf.equal(mask[index], keep)

        def without_index(index: tf.Tensor, example: Any) -> Any:
            return example

        ds = task.examples("train").enumerate().filter(in_split).map(without_index)
        return ds.apply(tf.data.experimental.assert_cardinality(size if keep else total - size))

    return dataclasses.replace(task, _load=load)  # an image or a text task, parts kept


def _parts_holdout(task: Any, size: int, seed: int) -> Any:
    """Each part of ``task`` with its share of ``size`` held out (at least one image)."""
    counts = [t.num_examples("train") for t in task.part_tasks]
    shares = [max(1, round(size * count / sum(counts))) for count in counts]
    parts = [holdout_split(t, s, seed) for t, s in zip(task.part_tasks, shares)]
    return dataclasses.replace(task, part_tasks=tuple(parts))


def default_validation_size(task: Task) -> int:
    """10% of the train split, at most `MAX_VALIDATION_SIZE` images."""
    return max(1, min(MAX_VALIDATION_SIZE, round(VALIDATION_FRACTION * task.num_examples("train"))))
