"""How a program learns: the `Trainer` interface every trainer implements (TensorFlow-specific).

`Trainer.fit` does what every way of training shares: it counts the run's steps from the
recipe, builds the learning-rate schedule, resumes from a checkpoint and replays the data
order, computes data-driven label maps, keeps to the step and time budget, shows progress,
stops on a non-finite loss and reports a `TrainingResult`. A trainer supplies two named
override points, in the manner of Keras Tuner's engine classes:

- `Trainer.compile`: give the model its optimiser (its variables are what checkpoints save);
- `Trainer.run`: train for a number of steps over the prepared data, calling the callbacks
  as `model.fit` does, and return a `fit`-style history.

`arnn_tf.training.white_box.WhiteBoxTrainer` backpropagates; the query-only trainer
(`arnn_tf.black_box.trainer`) implements the same two methods and gets checkpoints, resume,
schedules, EMA and TensorBoard with them.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import os
import time
from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from arnn_tf.label_maps.frequency import SAMPLE_IMAGES, FrequencyLabelMapping
from arnn_tf.label_maps.specs import data_driven_kind, learned_map_start
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.progress import StepProgress
from arnn_tf.recipes import (
    Recipe,
    map_warmup,
)
from arnn_tf.tasks.base import Task
from arnn_tf.training.checkpoints import ProgramCheckpoint, checkpoint_seconds, restore_checkpoint
from arnn_tf.training.results import StepAndTimeBudget, TrainingDivergedError, TrainingResult
from arnn_tf.training.schedules import learning_rate_schedule, steps_per_epoch


class Trainer(abc.ABC):
    """Trains a model's program (and a learned label map) on a task, as a recipe says."""

    def fit(
        self,
        model: ReprogrammedModel,
        task: Task,
        recipe: Recipe,
        *,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 100,
        save_checkpoints: bool = True,
        max_minutes: float | None = None,
        shuffle: bool = True,
        verbose: bool = True,
        map_trained: bool = False,
    ) -> TrainingResult:
        """Trains ``model`` on ``task``'s train split for the recipe's steps or epochs.

        With ``checkpoint_dir``, the trainable state is saved every ``checkpoint_every`` steps
        (only if ``save_checkpoints``: a multi-worker run's chief) and a later call resumes
        from it, with the same data order and schedule, up to the same total. ``max_minutes``
        stops early. ``map_trained``: the learned map holds trained weights (a warm start), so
        the fixed map it would start from is not computed. Raises TrainingDivergedError when
        the loss stops being finite."""
        _check_trainable(model, recipe, max_minutes)
        train_examples = task.num_examples("train")  # counted once: tf.data may iterate to count
        per_epoch = steps_per_epoch(train_examples, recipe.batch_size)
        steps = recipe.steps if recipe.steps is not None else per_epoch * recipe.epochs
        schedule = learning_rate_schedule(
            recipe.lr_schedule, recipe.learning_rate, per_epoch, steps, recipe.warmup_steps
        )
        self.compile(model, schedule, recipe.replace(map_warmup_steps=map_warmup(recipe, steps)))
        resumed_from, seconds_before, savers = _resume_and_save(
            model, checkpoint_dir, checkpoint_every, save_checkpoints, verbose
        )
        callbacks = [*callbacks, *savers]
        first_step = None if map_trained else resumed_from
        source = self.label_map_source(model)
        mapping = _label_mapping(
            task, recipe, train_examples, per_epoch, first_step, verbose, source
        )
        if resumed_from >= steps:
            return TrainingResult(
                resumed_from, resumed_from, 0.0, 0.0, None, False, {}, seconds_before
            )
        remaining = steps - resumed_from
        budget = StepAndTimeBudget(remaining, None if max_minutes is None else 60.0 * max_minutes)
        callbacks = [*mapping, keras.callbacks.TerminateOnNaN(), budget, *callbacks]
        if verbose:
            callbacks.append(StepProgress(steps, first_step=resumed_from))
        # Skipping the batches already trained on replays the uninterrupted run's data order. A
        # run of one epoch or less never reads an image twice, so it keeps no cache.
        data = task.dataset(
            "train", recipe.batch_size, shuffle=shuffle, repeat=True, seed=recipe.seed,
            drop_remainder=True, cache=steps > per_epoch, augment=recipe.augment,
        ).skip(resumed_from)  # fmt: skip
        start = time.perf_counter()
        history = self.run(model, data, remaining, min(per_epoch, remaining), callbacks, recipe)
        seconds = time.perf_counter() - start
        result = _result(history, resumed_from, budget, seconds, recipe, checkpoint_dir)
        return dataclasses.replace(result, total_seconds=seconds_before + seconds)

    @abc.abstractmethod
    def compile(
        self,
        model: ReprogrammedModel,
        schedule: keras.optimizers.schedules.LearningRateSchedule,
        recipe: Recipe,
    ) -> None:
        """Gives ``model`` its optimiser, following ``schedule`` (and the recipe's EMA)."""

    def label_map_source(self, model: ReprogrammedModel) -> Callable[[Any], Any] | None:
        """What a frequency or iterative label map reads the ImageNet logits of task images
        from: None for the model's own backbone; a query-only trainer answers through its
        queries."""
        return None

    @abc.abstractmethod
    def run(
        self,
        model: ReprogrammedModel,
        data: tf.data.Dataset,
        steps: int,
        steps_per_epoch: int,
        callbacks: Sequence[keras.callbacks.Callback],
        recipe: Recipe,
    ) -> dict[str, list[float]]:
        """Trains ``steps`` batches of ``data`` (epochs of ``steps_per_epoch``), calling
        ``callbacks`` as `model.fit` does; returns per-epoch "loss" and "accuracy"."""


def _check_trainable(model: ReprogrammedModel, recipe: Recipe, max_minutes: float | None) -> None:
    """Sets what trains (the program and any input encoder's weights, such as a text task's
    patch table, unless the recipe holds them fixed: the map-alone control) and refuses a run
    that could not train anything or has no time."""
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"the time limit must be > 0 minutes, got {max_minutes}")
    for layer in (model.program, *model.encoders):
        layer.trainable = not recipe.freeze_program
    if not model.trainable_variables:
        raise ValueError(
            "nothing to train: the program is held fixed and the label map is "
            "not learned (use a learned map such as 'linear')"
        )


def _resume(
    model: ReprogrammedModel, checkpoint_dir: str | os.PathLike[str], verbose: bool
) -> tuple[int, float]:
    """The step the checkpoint in ``checkpoint_dir`` was taken at (0 without one), restored,
    and the training seconds spent up to it."""
    resumed_from = restore_checkpoint(model, checkpoint_dir) or 0
    if not resumed_from:
        return 0, 0.0
    if verbose:
        print(f"resumed from step {resumed_from} (checkpoint in {checkpoint_dir})")
    return resumed_from, checkpoint_seconds(checkpoint_dir)


def _resume_and_save(
    model: ReprogrammedModel,
    checkpoint_dir: str | os.PathLike[str] | None,
    every: int,
    save: bool,
    verbose: bool,
) -> tuple[int, float, list[keras.callbacks.Callback]]:
    """Resumes ``model`` from the checkpoint in ``checkpoint_dir``, if there is one: the step
    and the training seconds it resumed from, and (if ``save``) the callback that saves the
    next checkpoints there."""
    if checkpoint_dir is None:
        return 0, 0.0, []
    resumed_from, seconds_before = _resume(model, checkpoint_dir, verbose)
    savers = [ProgramCheckpoint(checkpoint_dir, every, seconds_before)] if save else []
    return resumed_from, seconds_before, savers


def _label_mapping(
    task: Task,
    recipe: Recipe,
    train_examples: int,
    per_epoch: int,
    first_step: int | None,
    verbose: bool,
    source: Callable[[Any], Any] | None,
) -> list[keras.callbacks.Callback]:
    """The callback that computes a frequency or iterative label map, if the recipe has one,
    from ``source``'s logits (`Trainer.label_map_source`), from ``first_step`` on; None: the
    model's learned map is trained already, so the fixed map it starts from is not needed."""
    data_driven = data_driven_kind(recipe.label_map)
    if data_driven is None or first_step is None and learned_map_start(recipe.label_map):
        return []
    first_step = first_step or 0
    kind, per_class = data_driven
    sample_size = min(SAMPLE_IMAGES, train_examples)
    sample = task.sample("train", sample_size, 100, seed=recipe.seed)
    return [
        FrequencyLabelMapping(
            sample,
            per_class,
            iterative=kind == "iterative",
            max_images=sample_size,
            steps_per_epoch=per_epoch,
            first_step=first_step,
            class_names=task.class_names,
            verbose=verbose,
            source=source,
        )
    ]


def _result(
    history: dict[str, list[float]],
    resumed_from: int,
    budget: StepAndTimeBudget,
    seconds: float,
    recipe: Recipe,
    checkpoint_dir: str | os.PathLike[str] | None,
) -> TrainingResult:
    done = resumed_from + budget.steps_done
    last_loss = history["loss"][-1] if history.get("loss") else float("nan")
    if not math.isfinite(last_loss):
        raise TrainingDivergedError(
            f"the loss became {last_loss} by step {done}; lower the learning rate or lambda (l2)"
            + (
                f"; the last good program is in {checkpoint_dir}"
                if checkpoint_dir is not None
                else ""
            )
        )
    return TrainingResult(
        steps=done,
        resumed_from=resumed_from,
        seconds=seconds,
        images_per_second=budget.steps_done * recipe.batch_size / seconds,
        train_accuracy=float(history["accuracy"][-1]),
        stopped_by_time=budget.stopped_by_time,
        history={key: [float(v) for v in values] for key, values in history.items()},
    )
