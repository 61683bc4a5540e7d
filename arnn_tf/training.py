"""Training a program with `model.fit` on a task's tf.data pipeline (TensorFlow-specific).

Defaults follow the paper and its public re-implementations: Adam, learning rate 0.05
multiplied by 0.96 every 2 epochs, batch 32, a small lambda on ``||W||^2``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Sequence

import keras
import tensorflow as tf

from arnn_tf.checkpoints import ProgramCheckpoint, restore_checkpoint
from arnn_tf.custom_loop import fit_with_strategy_run, needs_custom_loop
from arnn_tf.label_maps import SAMPLE_IMAGES, FrequencyLabelMapping, data_driven_kind
from arnn_tf.model import ReprogrammedModel
from arnn_tf.progress import StepProgress, keras_verbosity
from arnn_tf.settings import (DEFAULT_BATCH_SIZE, DEFAULT_L2, DEFAULT_LEARNING_RATE, DEFAULT_STEPS,
                              LR_SCHEDULES)
from arnn_tf.tasks import Task

DECAY_RATE = 0.96
DECAY_EVERY_EPOCHS = 2


def paper_learning_rate(learning_rate: float, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """``learning_rate`` times 0.96 every 2 epochs, as in the re-implementations of the paper."""
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=DECAY_EVERY_EPOCHS * steps_per_epoch, decay_rate=DECAY_RATE, staircase=True)


def learning_rate_schedule(kind: str, learning_rate: float, steps_per_epoch: int, total_steps: int,
                           warmup_steps: int = 0) -> keras.optimizers.schedules.LearningRateSchedule:
    """The paper's step decay, or ``"cosine"``: from ``learning_rate`` down to 0 at ``total_steps``.

    The paper's rate hardly decays in a run of a few epochs, so the program is still moving
    at full speed when it is saved; cosine decay lets short runs settle. ``warmup_steps``
    (cosine only) first ramps the rate up linearly from 0: a fresh Adam moves every entry of
    W by about the full rate in its first steps, which undoes much of a warm-started program.
    """
    if warmup_steps and (kind != "cosine" or not 0 < warmup_steps < total_steps):
        raise ValueError(f"warmup needs the cosine schedule and fewer warmup steps ({warmup_steps}) "
                         f"than training steps ({total_steps})")
    if kind == "paper":
        return paper_learning_rate(learning_rate, steps_per_epoch)
    if kind == "cosine":
        if warmup_steps:
            return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total_steps - warmup_steps,
                                                          warmup_target=learning_rate, warmup_steps=warmup_steps)
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    raise ValueError(f"unknown learning-rate schedule {kind!r}; choose from {', '.join(LR_SCHEDULES)}")


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
    (``train_accuracy`` is None when it resumed a finished run and trained no step)."""

    steps: int
    resumed_from: int
    seconds: float
    images_per_second: float
    train_accuracy: float | None
    stopped_by_time: bool
    history: dict[str, list[float]]


def check_training_numbers(*, batch_size: int, learning_rate: float, epochs: int | None = None,
                           max_minutes: float | None = None) -> None:
    """Refuses, by name and value, the numbers no run can use (before any data is read)."""
    if batch_size < 1:
        raise ValueError(f"the batch size must be a positive integer, got {batch_size}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"the learning rate must be a finite number > 0, got {learning_rate}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"need at least one epoch, got {epochs}")
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"the time limit must be > 0 minutes, got {max_minutes}")


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Batches in one pass over ``num_examples`` (the last one may be short)."""
    return max(1, math.ceil(num_examples / batch_size))


def fit_program(model: ReprogrammedModel, task: Task, *, steps: int | None = None,
                epochs: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                learning_rate: float = DEFAULT_LEARNING_RATE, lr_schedule: str = "paper", warmup_steps: int = 0,
                ema_momentum: float | None = None, max_minutes: float | None = None,
                seed: int = 0, shuffle: bool = True, checkpoint_dir: str | os.PathLike[str] | None = None,
                checkpoint_every: int = 100, save_checkpoints: bool = True, label_map: str = "first",
                augment: tuple[str, ...] = (), callbacks: Sequence[keras.callbacks.Callback] = (),
                train_program: bool = True, verbose: Any = "auto") -> TrainingResult:
    """Compiles ``model`` with the paper's optimiser and trains it on ``task``'s train split.

    Give ``steps`` (batches) or ``epochs`` (passes over the train split); with neither,
    ``DEFAULT_STEPS`` batches. ``lr_schedule`` is ``"paper"`` or ``"cosine"`` (see
    `learning_rate_schedule`; cosine spans all the steps, resumed ones included, and starts
    with ``warmup_steps`` of linear warmup). With
    ``ema_momentum``, the program kept at the end is an exponential moving average of ``W``
    over the steps (Keras' optimiser EMA), which smooths out where the last steps left it. With
    ``checkpoint_dir``, the program and optimiser state are saved every ``checkpoint_every``
    steps, and a later call with the same directory resumes from the last checkpoint (same
    data order, same learning-rate schedule) and stops at the same total step count. Call it
    inside ``strategy.scope()`` to train distributed; in a multi-worker run every worker
    restores but only the chief should ``save_checkpoints``.

    ``label_map`` is the spec the model's map was built from; for ``frequency[:K]`` the map
    is computed from the network's predictions before training, for ``iterative[:K]`` also
    before every later epoch (see `arnn_tf.label_maps`). ``augment`` names training-time
    augmentations of the task images (`arnn_tf.tasks.base.AUGMENTATIONS`), e.g. ``("flip",)``.
    Without ``train_program``, W keeps its value (zero, or a warm start's) and only a learned
    label map trains: the control that shows what the program itself adds.

    Raises TrainingDivergedError when the loss stops being finite.
    """
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    check_training_numbers(batch_size=batch_size, learning_rate=learning_rate, epochs=epochs,
                           max_minutes=max_minutes)
    model.program.trainable = train_program
    if not model.trainable_variables:
        raise ValueError("nothing to train: the program is held fixed and the label map is not "
                         "learned (use a learned map such as 'linear')")
    train_examples = task.num_examples("train")  # counted once: tf.data may have to iterate to count
    per_epoch = steps_per_epoch(train_examples, batch_size)
    if steps is None:
        steps = per_epoch * epochs if epochs is not None else DEFAULT_STEPS
    if steps < 1:
        raise ValueError(f"need at least one training step, got {steps}")
    if ema_momentum is not None and not 0.0 < ema_momentum < 1.0:
        raise ValueError(f"the EMA momentum must lie strictly between 0 and 1, got {ema_momentum}")
    schedule = learning_rate_schedule(lr_schedule, learning_rate, per_epoch, steps, warmup_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule, use_ema=ema_momentum is not None,
                                                  ema_momentum=ema_momentum or 0.99))
    resumed_from = 0
    if checkpoint_dir is not None:
        resumed_from = restore_checkpoint(model, checkpoint_dir) or 0
        if resumed_from and verbose:
            print(f"resumed from step {resumed_from} (checkpoint in {checkpoint_dir})")
        if save_checkpoints:
            callbacks = [*callbacks, ProgramCheckpoint(checkpoint_dir, checkpoint_every)]
    remaining = steps - resumed_from
    data_driven = data_driven_kind(label_map)
    if data_driven is not None:
        kind, per_class = data_driven
        sample_size = min(SAMPLE_IMAGES, train_examples)
        sample = task.sample("train", sample_size, 100, seed=seed)
        callbacks = [FrequencyLabelMapping(sample, per_class, iterative=kind == "iterative", max_images=sample_size,
                                           steps_per_epoch=per_epoch, first_step=resumed_from,
                                           class_names=task.class_names, verbose=bool(verbose)), *callbacks]
    if remaining <= 0:
        return TrainingResult(resumed_from, resumed_from, 0.0, 0.0, None, False, {})
    budget = StepAndTimeBudget(remaining, None if max_minutes is None else 60.0 * max_minutes)
    # Skipping the batches already trained on replays the uninterrupted run's data order. A run
    # of one epoch or less never reads an image twice, so it keeps no cache (tf.data would warn
    # about the half-filled one at exit).
    data = task.dataset("train", batch_size, shuffle=shuffle, repeat=True, seed=seed,
                        drop_remainder=True, cache=steps > per_epoch, augment=augment).skip(resumed_from)
    shown_epoch = min(per_epoch, remaining)  # fit's epoch; the schedule keeps the real epoch
    callbacks = [keras.callbacks.TerminateOnNaN(), budget, *callbacks]
    if verbose:
        callbacks.append(StepProgress(steps, first_step=resumed_from))
    start = time.perf_counter()
    if needs_custom_loop(tf.distribute.get_strategy()):
        history = fit_with_strategy_run(model, data, steps=remaining, global_batch_size=batch_size,
                                        steps_per_epoch=shown_epoch, callbacks=callbacks)
    else:
        history = model.fit(data, epochs=math.ceil(remaining / shown_epoch), steps_per_epoch=shown_epoch,
                            shuffle=False, callbacks=callbacks, verbose=0).history
    seconds = time.perf_counter() - start
    done = resumed_from + budget.steps_done
    last_loss = history["loss"][-1] if history.get("loss") else float("nan")
    if not math.isfinite(last_loss):
        raise TrainingDivergedError(
            f"the loss became {last_loss} by step {done}; lower the learning rate or lambda (l2)"
            + (f"; the last good program is in {checkpoint_dir}" if checkpoint_dir is not None else ""))
    return TrainingResult(
        steps=done,
        resumed_from=resumed_from,
        seconds=seconds,
        images_per_second=budget.steps_done * batch_size / seconds,
        train_accuracy=float(history["accuracy"][-1]),
        stopped_by_time=budget.stopped_by_time,
        history={key: [float(v) for v in values] for key, values in history.items()},
    )


def evaluate_program(model: ReprogrammedModel, task: Task, split: str = "test",
                     batch_size: int = 64, verbose: Any = "auto") -> dict[str, float]:
    """Loss and accuracy on a whole split of ``task``."""
    if not model.compiled:
        model.compile()
    # read once: under a distribution strategy Keras stops at the last batch without reaching the
    # end of the data, so a cache would be left half-filled (and tf.data warns about it)
    results = model.evaluate(task.dataset(split, batch_size, cache=False), return_dict=True,
                             verbose=keras_verbosity(verbose))
    return {key: float(value) for key, value in results.items()}


def evaluate_parts(model: ReprogrammedModel, task: Task, split: str = "test",
                   batch_size: int = 64) -> dict[str, float]:
    """Accuracy on each part of a combined task, choosing among that part's classes only."""
    results = {}
    for part in task.parts:
        low, high = part.first_class, part.first_class + part.num_classes
        data = task.dataset(split, batch_size, cache=False).unbatch().filter(
            lambda image, label, low=low, high=high: (label >= low) & (label < high)).batch(batch_size)
        correct = total = 0
        for images, labels in data:
            probabilities = keras.ops.convert_to_numpy(model.predict_on_batch(images))[:, low:high]
            correct += int((probabilities.argmax(axis=-1) + low == labels.numpy()).sum())
            total += len(labels)
        results[part.name] = correct / max(total, 1)
    return results
