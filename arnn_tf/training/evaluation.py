"""Evaluation of a reprogrammed model on a task's split, whole and part by part."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.models.task_unknown import task_unknown
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
        per_part = _part_results(model, task, split, batch_size)
        return _means(per_part)
    # read once: under a distribution strategy Keras stops at the last batch without reaching the
    # end of the data, so a cache would be left half-filled (and tf.data warns about it)
    results = model.evaluate(
        task.dataset(split, batch_size, cache=False),
        return_dict=True,
        verbose=keras_verbosity(verbose),
    )
    return {key: float(value) for key, value in results.items()}


def test_results(
    model: ReprogrammedModel, task: Task, split: str = "test", verbose: Any = "auto"
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """What a run reports of ``split``: loss and accuracy (for a task of several parts, the
    parts' means, with the worst part's accuracy and the mean accuracy with the task unknown,
    `evaluate_task_unknown`), and ``test_accuracy_per_task`` where the task has parts."""
    if len(task.part_tasks) == 1:
        results = evaluate_program(model, task, split, verbose=verbose)
        per_task = (
            {"test_accuracy_per_task": evaluate_parts(model, task, split)} if task.parts else {}
        )
        return results, per_task
    per_part = _part_results(model, task, split, 64)
    results = _means(per_part)
    accuracies = {part.name: r["accuracy"] for part, r in zip(task.parts, per_part)}
    unknown = evaluate_task_unknown(model, task, split)
    results["accuracy_worst_part"] = min(accuracies.values())
    results["accuracy_task_unknown"] = float(np.mean(list(unknown.values())))
    return results, {"test_accuracy_per_task": accuracies}


def evaluate_parts(
    model: ReprogrammedModel, task: Task, split: str = "test", batch_size: int = 64
) -> dict[str, float]:
    """Accuracy on each part of a combined task, choosing among that part's classes only."""
    if len(task.part_tasks) > 1:
        per_part = _part_results(model, task, split, batch_size)
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


def _means(per_part: list[dict[str, float]]) -> dict[str, float]:
    """The parts' mean of each result (loss, accuracy)."""
    return {key: float(np.mean([r[key] for r in per_part])) for key in per_part[0]}


def _part_results(model: Any, task: Any, split: str, batch_size: int) -> list[dict[str, float]]:
    """Loss and accuracy of each part of a multi-part task, from one pass of the model over
    every part's examples in part order (each answered by its own part, as the model answers:
    mirror-averaged if it averages). The loss is the cross-entropy plus the program's L2 term,
    as Keras reports a one-part model's."""
    firsts = np.cumsum([0, *(t.num_classes for t in task.part_tasks)])
    count = len(task.part_tasks)
    correct, total, loss = np.zeros(count), np.zeros(count), np.zeros(count)
    for inputs, labels in task.dataset(split, batch_size, cache=False):
        probabilities = keras.ops.convert_to_numpy(model.predict_on_batch(list(inputs)))
        labels = labels.numpy()
        parts = np.searchsorted(firsts, labels, side="right") - 1
        chosen = probabilities[np.arange(len(labels)), labels]
        np.add.at(correct, parts, probabilities.argmax(axis=-1) == labels)
        np.add.at(total, parts, 1)
        np.add.at(loss, parts, -np.log(np.clip(chosen, 1e-7, 1.0)))
    penalty = float(sum(keras.ops.convert_to_numpy(term) for term in model.losses))
    total = np.maximum(total, 1)
    return [
        {"loss": float(loss[i] / total[i] + penalty), "accuracy": float(correct[i] / total[i])}
        for i in range(count)
    ]


def evaluate_task_unknown(
    model: ReprogrammedModel, task: Task, split: str = "test", batch_size: int = 64
) -> dict[str, float]:
    """Each part's accuracy with the task unknown: its examples answered by the argmax over
    the classes of every part that reads them as they are (inputs of the same description
    and input state: images of one shape, text of one vectorizer), right when the part and
    the class are."""
    tasks = task.part_tasks
    results = {}
    for i, part_task in enumerate(tasks):
        readers = [j for j, other in enumerate(tasks) if _reads_alike(other, part_task)]
        offset = sum(tasks[j].num_classes for j in readers[: readers.index(i)])
        correct = total = 0
        for inputs, labels in part_task.dataset(split, batch_size, cache=False):
            answers = keras.ops.convert_to_numpy(
                task_unknown(model, readers, [inputs] * len(readers))
            )
            correct += int((answers.argmax(axis=-1) == labels.numpy() + offset).sum())
            total += len(labels)
        results[part_task.name] = correct / max(total, 1)
    return results


def _reads_alike(one: Any, other: Any) -> bool:
    """Whether two part tasks' examples are of one form (a part of one reads the other's)."""
    return (
        one.modality == other.modality
        and one.input_description == other.input_description
        and one.input_state == other.input_state
    )
