"""The white-box trainer: gradients by backpropagation through the frozen backbone."""

from __future__ import annotations

import math
from typing import Sequence

import keras
import tensorflow as tf

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.training.losses import task_loss
from arnn_tf.training.multi_worker_loop import fit_with_strategy_run, needs_custom_loop
from arnn_tf.training.optimizers import adam
from arnn_tf.training.plan import TrainingPlan
from arnn_tf.training.trainer import Trainer


class WhiteBoxTrainer(Trainer):
    """Gradients by backpropagation through the frozen backbone, with Adam."""

    def compile(
        self,
        model: ReprogrammedModel,
        plan: TrainingPlan,
    ) -> None:
        model.compile(optimizer=adam(plan, model), loss=task_loss(plan.recipe))

    def run(
        self,
        model: ReprogrammedModel,
        data: tf.data.Dataset,
        steps: int,
        steps_per_epoch: int,
        callbacks: Sequence[keras.callbacks.Callback],
        plan: TrainingPlan,
    ) -> dict[str, list[float]]:
        if needs_custom_loop(tf.distribute.get_strategy()):
            return fit_with_strategy_run(
                model,
                data,
                steps=steps,
                global_batch_size=plan.recipe.batch_size,
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
