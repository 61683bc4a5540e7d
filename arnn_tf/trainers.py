"""How a program learns: the `Trainer` interface and the white-box trainer (TensorFlow-specific).

`Trainer.fit` does what every way of training shares: it counts the run's steps from the
recipe, builds the learning-rate schedule, resumes from a checkpoint and replays the data
order, computes data-driven label maps, keeps to the step and time budget, shows progress,
stops on a non-finite loss and reports a `TrainingResult`. A trainer supplies two named
override points, in the manner of Keras Tuner's engine classes:

- `Trainer.compile`: give the model its optimiser (its variables are what checkpoints save);
- `Trainer.run`: train for a number of steps over the prepared data, calling the callbacks
  as `model.fit` does, and return a `fit`-style history.

`WhiteBoxTrainer` backpropagates through the frozen backbone (`model.fit`, or a
`strategy.run` loop under multi-worker distribution). A query-only trainer implements the
same two methods and gets checkpoints, resume, schedules, EMA and TensorBoard with them.
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

from arnn_tf.checkpoints import ProgramCheckpoint, checkpoint_seconds, restore_checkpoint
from arnn_tf.custom_loop import fit_with_strategy_run, needs_custom_loop
from arnn_tf.label_maps import (
    SAMPLE_IMAGES,
    FrequencyLabelMapping,
    data_driven_kind,
    learned_map_start,
)
from arnn_tf.losses import task_loss
from arnn_tf.model import ReprogrammedModel
from arnn_tf.progress import StepProgress
from arnn_tf.recipes import (
    ADAM_BETA_1,
    Recipe,
    map_warmup,
    program_first_moment,
    program_rate_scale,
)
from arnn_tf.tasks import Task
from arnn_tf.training import (
    StepAndTimeBudget,
    TrainingDivergedError,
    TrainingResult,
    learning_rate_schedule,
    steps_per_epoch,
)


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


def adam(
    schedule: keras.optimizers.schedules.LearningRateSchedule,
    recipe: Recipe,
    model: ReprogrammedModel,
) -> keras.optimizers.Adam:
    """Adam on ``schedule``, keeping the recipe's moving average of the weights if it has one,
    and stepping ``model``'s program weight at `program_rate_scale` times the rate with the
    first-moment decay `program_first_moment`, from step ``map_warmup_steps`` on (with the
    input encoders' weights)."""
    options = {"use_ema": recipe.ema is not None, "ema_momentum": recipe.ema or 0.99}
    scale, momentum = program_rate_scale(recipe), program_first_moment(recipe)
    if scale == 1 and momentum == ADAM_BETA_1 and not recipe.map_warmup_steps:
        return keras.optimizers.Adam(schedule, beta_1=ADAM_BETA_1, **options)
    path = model.program.weight.path
    held = [path] + [v.path for encoder in model.encoders for v in encoder.trainable_weights]
    return ScaledRateAdam(
        schedule,
        {path: scale},
        first_moments={path: momentum},
        start_steps=dict.fromkeys(held, recipe.map_warmup_steps) if recipe.map_warmup_steps else {},
        **options,
    )


@keras.saving.register_keras_serializable(package="arnn_tf")
class ScaledRateAdam(keras.optimizers.Adam):
    """Adam with the learning rate of some variables, named by path, scaled, their first
    moment decaying at its own rate (``first_moments``: path -> beta_1), and their steps
    starting later (``start_steps``: path -> the first step that moves them).

    Adam's step does not depend on the gradient's scale, so a slower W (whose gradient, when
    estimated from queries, is mostly noise) needs a smaller rate, not a smaller gradient;
    a longer first-moment memory averages more of those estimates into each step; and W's
    gradient is steadier once the map it is read through has learned (a later start).
    """

    def __init__(
        self,
        learning_rate: Any,
        rate_scales: dict[str, float],
        first_moments: dict[str, float] | None = None,
        start_steps: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rate_scales = dict(rate_scales)
        self.first_moments = dict(first_moments or {})
        self.start_steps = dict(start_steps or {})

    def build(self, variables: Sequence[Any]) -> None:
        super().build(variables)
        self._scales = [self.rate_scales.get(v.path, 1.0) for v in variables]
        self._beta_1s = [self.first_moments.get(v.path, self.beta_1) for v in variables]
        self._starts = [self.start_steps.get(v.path, 0) for v in variables]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = self._get_variable_index(variable)
        rate = learning_rate * self._scales[index]
        if self._starts[index]:
            started = keras.ops.greater_equal(self.iterations, self._starts[index])
            rate = rate * keras.ops.cast(started, variable.dtype)
        shared_beta_1 = self.beta_1
        self.beta_1 = self._beta_1s[index]  # read by Adam's step (and its bias correction)
        try:
            super().update_step(gradient, variable, rate)
        finally:
            self.beta_1 = shared_beta_1

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate_scales": self.rate_scales,
            "first_moments": self.first_moments,
            "start_steps": self.start_steps,
        }


class WhiteBoxTrainer(Trainer):
    """Gradients by backpropagation through the frozen backbone, with Adam."""

    def compile(
        self,
        model: ReprogrammedModel,
        schedule: keras.optimizers.schedules.LearningRateSchedule,
        recipe: Recipe,
    ) -> None:
        model.compile(optimizer=adam(schedule, recipe, model), loss=task_loss(recipe))

    def run(
        self,
        model: ReprogrammedModel,
        data: tf.data.Dataset,
        steps: int,
        steps_per_epoch: int,
        callbacks: Sequence[keras.callbacks.Callback],
        recipe: Recipe,
    ) -> dict[str, list[float]]:
        if needs_custom_loop(tf.distribute.get_strategy()):
            return fit_with_strategy_run(
                model,
                data,
                steps=steps,
                global_batch_size=recipe.batch_size,
                steps_per_epoch=steps_per_epoch,
                callbacks=callbacks,
            )
        return model.fit(
            data,
            epochs=math.ceil(steps / steps_per_epoch),
            steps_per_epoch=steps_per_epoch,
            shuffle=False,
            callbacks=list(callbacks),
            verbose=0,
        ).history


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
