"""The white-box trainer: gradients by backpropagation through the frozen backbone."""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import tensorflow as tf

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.recipes import Recipe
from arnn_tf.settings import DEFAULT_BATCH_SIZE, DEFAULT_LEARNING_RATE, DEFAULT_STEPS
from arnn_tf.tasks.base import Task
from arnn_tf.training.losses import task_loss
from arnn_tf.training.multi_worker_loop import fit_with_strategy_run, needs_custom_loop
from arnn_tf.training.optimizers import adam
from arnn_tf.training.results import TrainingResult
from arnn_tf.training.trainer import Trainer


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
    """Trains ``model`` on ``task`` with `WhiteBoxTrainer`, the settings given one by one:
    they fill in a `arnn_tf.recipes.Recipe` (see its fields; ``ema_momentum`` is
    ``ema``, ``train_program`` is not ``freeze_program``). With neither ``steps`` nor
    ``epochs``, ``DEFAULT_STEPS`` steps. ``label_map`` is the spec the model's map was built
    from (a frequency or iterative map is computed from the data while training).
    ``run_options`` (callbacks, checkpoint_dir, checkpoint_every, save_checkpoints,
    max_minutes, shuffle) are `arnn_tf.training.trainer.Trainer.fit`'s.

    Raises TrainingDivergedError when the loss stops being finite.
    """
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
