"""The parts of training every trainer shares: schedules, the step and time budget, the
result, and evaluation on a task's splits; `fit_program`, the white-box trainer called with
settings one by one (`arnn_tf.trainers` holds the trainers themselves).

Defaults follow the paper and its public re-implementations: Adam, learning rate 0.05
multiplied by 0.96 every 2 epochs, batch 32, a small lambda on ``||W||^2``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import keras
import numpy as np

from arnn_tf.model import ReprogrammedModel
from arnn_tf.progress import keras_verbosity
from arnn_tf.settings import DEFAULT_BATCH_SIZE, DEFAULT_LEARNING_RATE, DEFAULT_STEPS, LR_SCHEDULES
from arnn_tf.tasks import Task

DECAY_RATE = 0.96
DECAY_EVERY_EPOCHS = 2


def paper_learning_rate(
    learning_rate: float, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """``learning_rate`` times 0.96 every 2 epochs, as in the re-implementations of the paper."""
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate,
        decay_steps=DECAY_EVERY_EPOCHS * steps_per_epoch,
        decay_rate=DECAY_RATE,
        staircase=True,
    )


def learning_rate_schedule(
    kind: str, learning_rate: float, steps_per_epoch: int, total_steps: int, warmup_steps: int = 0
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The paper's step decay, or ``"cosine"``: from ``learning_rate`` down to 0 at ``total_steps``.

    The paper's rate hardly decays in a run of a few epochs, so the program is still moving
    at full speed when it is saved; cosine decay lets short runs settle. ``warmup_steps``
    (cosine only) first ramps the rate up linearly from 0: a fresh Adam moves every entry of
    W by about the full rate in its first steps, which undoes much of a warm-started program.
    """
    if warmup_steps and (kind != "cosine" or not 0 < warmup_steps < total_steps):
        raise ValueError(
            f"warmup needs the cosine schedule and fewer warmup steps ({warmup_steps}) "
            f"than training steps ({total_steps})"
        )
    if kind == "paper":
        return paper_learning_rate(learning_rate, steps_per_epoch)
    if kind == "cosine":
        if warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                0.0,
                decay_steps=total_steps - warmup_steps,
                warmup_target=learning_rate,
                warmup_steps=warmup_steps,
            )
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    raise ValueError(
        f"unknown learning-rate schedule {kind!r}; choose from {', '.join(LR_SCHEDULES)}"
    )


class StepAndTimeBudget(keras.callbacks.Callback):
    """Stops `fit` after exactly ``max_steps`` batches or once ``max_seconds`` have passed.

    `fit` only counts whole epochs; this lets ``--steps`` end mid-epoch and ``--max-minutes``
    stop a run early while the caller still evaluates and saves.
    """

    def __init__(self, max_steps: int | None = None, max_seconds: float | None = None) -> None:
        super().__init__()
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.steps_done = 0
        self.stopped_by_time = False
        self._start = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps_done += 1
        if self.max_steps is not None and self.steps_done >= self.max_steps:
            self.model.stop_training = True
        elif self.max_seconds is not None and time.perf_counter() - self._start >= self.max_seconds:
            self.stopped_by_time = True
            self.model.stop_training = True


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint (if any) holds the last good program."""


@dataclasses.dataclass
class TrainingResult:
    """What a training run measured. ``steps`` counts all steps, resumed ones included;
    ``seconds``, ``images_per_second`` and ``train_accuracy`` cover this process's run only
    (``train_accuracy`` is None when it resumed a finished run and trained no step);
    ``total_seconds`` the training time of every process that trained the run, as far as its
    checkpoints kept it."""

    steps: int
    resumed_from: int
    seconds: float
    images_per_second: float
    train_accuracy: float | None
    stopped_by_time: bool
    history: dict[str, list[float]]
    total_seconds: float = 0.0


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Batches in one pass over ``num_examples`` (the last one may be short)."""
    return max(1, math.ceil(num_examples / batch_size))


def fit_program(
    model: ReprogrammedModel,
    task: Task,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    lr_schedule: str = "paper",
    warmup_steps: int = 0,
    ema_momentum: float | None = None,
    seed: int = 0,
    label_map: str = "first",
    augment: tuple[str, ...] = (),
    train_program: bool = True,
    verbose: Any = "auto",
    **run_options: Any,
) -> TrainingResult:
    """Trains ``model`` on ``task`` with `arnn_tf.trainers.WhiteBoxTrainer`, the settings given
    one by one: they fill in a `arnn_tf.recipes.Recipe` (see its fields; ``ema_momentum`` is
    ``ema``, ``train_program`` is not ``freeze_program``). With neither ``steps`` nor
    ``epochs``, ``DEFAULT_STEPS`` steps. ``label_map`` is the spec the model's map was built
    from (a frequency or iterative map is computed from the data while training).
    ``run_options`` (callbacks, checkpoint_dir, checkpoint_every, save_checkpoints,
    max_minutes, shuffle) are `arnn_tf.trainers.Trainer.fit`'s.

    Raises TrainingDivergedError when the loss stops being finite.
    """
    from arnn_tf.recipes import Recipe
    from arnn_tf.trainers import WhiteBoxTrainer  # it builds on this module

    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    recipe = Recipe(
        steps=DEFAULT_STEPS if steps is None and epochs is None else steps,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        lr_schedule=lr_schedule,
        warmup_steps=warmup_steps,
        ema=ema_momentum,
        label_map=label_map,
        augment=augment,
        seed=seed,
        freeze_program=not train_program,
    )
    return WhiteBoxTrainer().fit(model, task, recipe, verbose=bool(verbose), **run_options)


def evaluate_program(
    model: ReprogrammedModel,
    task: Task,
    split: str = "test",
    batch_size: int = 64,
    verbose: Any = "auto",
) -> dict[str, float]:
    """Loss and accuracy on a whole split of ``task``; for a task whose parts keep inputs of
    their own (`arnn_tf.tasks.MixedTask`), the mean of the parts' results."""
    if not model.compiled:
        model.compile()
    if hasattr(task, "members"):
        per_part = _member_results(model, task, split, batch_size, verbose)
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
    if hasattr(task, "members"):
        per_part = _member_results(model, task, split, batch_size, verbose=0)
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


def _member_results(
    model: Any, task: Any, split: str, batch_size: int, verbose: Any
) -> list[dict[str, float]]:
    """Loss and accuracy of each member of a mixed task on its own split, by its part model."""
    results = []
    for i, member in enumerate(task.members):
        part = model.part_model(i)
        part.compile(loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
        data = member.dataset(split, batch_size, cache=False)
        scores = part.evaluate(data, return_dict=True, verbose=keras_verbosity(verbose))
        results.append({key: float(value) for key, value in scores.items()})
    return results
