"""How a program learns: the `Trainer` interface every trainer implements (TensorFlow-specific).

`Trainer.fit` does what every way of training shares: it resolves the recipe's
`arnn_tf.training.plan.TrainingPlan` (steps, schedule, data, label-map callbacks), resumes
from a checkpoint and replays the data order, keeps to the step and time budget, shows
progress, stops on a non-finite loss and reports a `TrainingResult`. A trainer supplies two named
override points, in the manner of Keras Tuner's engine classes:

- `Trainer.compile`: give the model its optimiser (its variables are what checkpoints save);
- `Trainer.run`: train for a number of steps over the prepared data, calling the callbacks
  as `model.fit` does, and return a `fit`-style history.

It may also override `Trainer.checkpoint_arrays` and `Trainer.restore_arrays` (state of its
own that checkpoints keep) and `Trainer.label_map_source` (where a data-driven label map reads
logits from).

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

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.progress import StepProgress
from arnn_tf.recipes import Recipe
from arnn_tf.tasks.base import Task
from arnn_tf.training.checkpoints import (
    ProgramCheckpoint,
    checkpoint_extras,
    restore_checkpoint,
)
from arnn_tf.training.results import StepAndTimeBudget, TrainingDivergedError, TrainingResult
from arnn_tf.training.plan import TrainingPlan


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
        # The train split is counted once: tf.data may iterate to count.
        plan = TrainingPlan.resolve(recipe, task.num_examples("train"))
        self.compile(model, plan)
        resumed_from, seconds_before, savers = _resume_and_save(
            model, self, checkpoint_dir, checkpoint_every, save_checkpoints, verbose
        )
        first_step = None if map_trained else resumed_from
        mapping = plan.label_mapping(task, first_step, verbose, self.label_map_source(model))
        if resumed_from >= plan.steps:
            return TrainingResult(
                resumed_from, resumed_from, 0.0, 0.0, None, False, {}, seconds_before
            )
        remaining = plan.steps - resumed_from
        budget = StepAndTimeBudget(remaining, None if max_minutes is None else 60.0 * max_minutes)
        callbacks = [*mapping, keras.callbacks.TerminateOnNaN(), budget, *callbacks, *savers]
        if verbose:
            callbacks.append(StepProgress(plan.steps, first_step=resumed_from))
        data = plan.train_data(task, shuffle, resumed_from)
        start = time.perf_counter()
        history = self.run(
            model, data, remaining, min(plan.steps_per_epoch, remaining), callbacks, plan
        )
        seconds = time.perf_counter() - start
        result = _result(history, resumed_from, budget, seconds, recipe, checkpoint_dir)
        return dataclasses.replace(result, total_seconds=seconds_before + seconds)

    @abc.abstractmethod
    def compile(self, model: ReprogrammedModel, plan: TrainingPlan) -> None:
        """Gives ``model`` its optimiser, following the plan's schedule (and its EMA)."""

    def checkpoint_arrays(self) -> dict[str, Any]:
        """Arrays of the trainer's own, by name, that each checkpoint keeps: none by default;
        a search over the program keeps its state here."""
        return {}

    def restore_arrays(self, arrays: dict[str, Any]) -> None:
        """Takes back what `checkpoint_arrays` gave, from the checkpoint a run resumes from
        (called after `compile`, only when there is one)."""

    def label_map_source(self, model: ReprogrammedModel) -> Callable[[Any, int], Any] | None:
        """What a frequency or iterative label map reads the ImageNet logits of a part's
        inputs from (``(inputs, part) -> logits``): None for the model's own backbone; a
        query-only trainer answers through its queries."""
        return None

    @abc.abstractmethod
    def run(
        self,
        model: ReprogrammedModel,
        data: tf.data.Dataset,
        steps: int,
        steps_per_epoch: int,
        callbacks: Sequence[keras.callbacks.Callback],
        plan: TrainingPlan,
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
    model: ReprogrammedModel,
    trainer: Trainer,
    checkpoint_dir: str | os.PathLike[str],
    verbose: bool,
) -> tuple[int, float]:
    """The step the checkpoint in ``checkpoint_dir`` was taken at (0 without one), restored
    (the trainer's own arrays too), and the training seconds spent up to it."""
    resumed_from = restore_checkpoint(model, checkpoint_dir) or 0
    if not resumed_from:
        return 0, 0.0
    seconds, arrays = checkpoint_extras(checkpoint_dir)
    trainer.restore_arrays(arrays)
    if verbose:
        print(f"resumed from step {resumed_from} (checkpoint in {checkpoint_dir})")
    return resumed_from, seconds


def _resume_and_save(
    model: ReprogrammedModel,
    trainer: Trainer,
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
    resumed_from, seconds_before = _resume(model, trainer, checkpoint_dir, verbose)
    savers = (
        [ProgramCheckpoint(checkpoint_dir, every, seconds_before, trainer.checkpoint_arrays)]
        if save
        else []
    )
    return resumed_from, seconds_before, savers


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
