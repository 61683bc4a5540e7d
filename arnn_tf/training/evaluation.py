"""Evaluation of a reprogrammed model on a task's split, whole and part by part."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.progress import keras_verbosity
from arnn_tf.tasks.base import Task


def evaluate_program(
    model: ReprogrammedModel,
    task: Task,
    split: str = "test",
    batch_size: int = 64,
    verbose: Any = "auto",
) -> dict[str, float]:
    """Loss and accuracy on a whole split of ``task``; for a task whose parts keep inputs of
    their own (`arnn_tf.tasks.parts.MultiPartTask`), the mean of the parts' results."""
    if not model.compiled:
        model.compile()
    if len(task.part_tasks) > 1:
        per_part = _part_results(model, task, split, batch_size, verbose)
        return {key: float(np.mean([r[key] for r in per_part])) for key in per_part[0]}
    # read once: under a distribution strategy Keras stops at the last batch without reaching the
    # end of the data, so a cache would be left half-filled (and tf.data warns about it)
    results = model.evaluate(
        task.dataset(split, batch_size, cache=False),
        return_dict=True,
        verbose=keras_verbosity(verbose),
    )
    return {key: float(value) for key, value in results.items()}


def evaluate_parts(
    model: ReprogrammedModel, task: Task, split: str = "test", batch_size: int = 64
) -> dict[str, float]:
    """Accuracy on each part of a combined task, choosing among that part's classes only."""
    if len(task.part_tasks) > 1:
        per_part = _part_results(model, task, split, batch_size, verbose=0)
        return {part.name: r["accuracy"] for part, r in zip(task.parts, per_part)}
    results = {}
    for part in task.parts:
        low, high = part.first_class, part.first_class + part.num_classes
        data = (
            task.dataset(split, batch_size, cache=False)
            .unbatch()
            .filter(lambda image, label, low=low, high=high: (label >= low) & (label < high))
            .batch(batch_size)
        )
        correct = total = 0
        for images, labels in data:
            probabilities = keras.ops.convert_to_numpy(model.predict_on_batch(images))[:, low:high]
            correct += int((probabilities.argmax(axis=-1) + low == labels.numpy()).sum())
            total += len(labels)
        results[part.name] = correct / max(total, 1)
    return results


def _part_results(
    model: Any, task: Any, split: str, batch_size: int, verbose: Any
) -> list[dict[str, float]]:
    """Loss and accuracy of each part of a multi-part task on its own split, by its part model."""
    results = []
    for i, part_task in enumerate(task.part_tasks):
        part = model.part_model(i)
        part.compile(loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
        data = part_task.dataset(split, batch_size, cache=False)
        scores = part.evaluate(data, return_dict=True, verbose=keras_verbosity(verbose))
        results.append({key: float(value) for key, value in scores.items()})
    return results
