"""`ReprogrammingHyperModel`: each trial's recipe, model and training, around one backbone.

A trial is the base recipe with the space's values (`SearchSpace.recipe`), trained for the
search's trial length, so its program and its recipe rerun the same way `arnn_tf.runs.train`
runs any recipe. Building the frozen backbone once, and only a fresh program and label map
per trial, keeps trials cheap: a trial costs its training steps, not a backbone's
construction.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner

from arnn_tf.backbones import build_backbone
from arnn_tf.label_maps.specs import learned_map_start, parse_label_map
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.recipes import Recipe
from arnn_tf.runs import build_model
from arnn_tf.tasks.base import Task
from arnn_tf.training.losses import task_loss
from arnn_tf.training.optimizers import adam
from arnn_tf.training.plan import TrainingPlan
from arnn_tf.training.schedules import steps_per_epoch
from arnn_tf.tuning.space import SearchSpace

VALIDATION_BATCH_SIZE = 64


class ReprogrammingHyperModel(keras_tuner.HyperModel):
    """Builds and trains each trial's recipe around one shared frozen backbone.

    Args:
        base: the recipe every trial starts from; its backbone, weights and seed build the
            shared backbone, and its seed also seeds data shuffling and random label maps.
        task: trained on its "train" split and scored on its "test" split (pass a
            `holdout_split` so the real test split stays out of the search).
        space: the searched fields (see `SearchSpace.fit_to`).
        steps_per_epoch: batches per Keras epoch (a round); None for one pass over the train
            split.
        epochs: rounds per trial when the tuner does not set them (Hyperband does).
    """

    def __init__(
        self,
        base: Recipe,
        task: Task,
        space: SearchSpace,
        *,
        steps_per_epoch: int | None = None,
        epochs: int = 1,
    ) -> None:
        super().__init__(name="reprogramming")
        self.base = base
        self.task = task
        self.space = space
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.backbone = build_backbone(
            base.backbone, base.weights, seed=base.seed, input_size=base.frame_size
        )
        self.train_examples = task.num_examples("train")

    def round_steps(self, batch_size: int) -> int:
        """Training batches in one round (Keras epoch) of a trial."""
        return self.steps_per_epoch or steps_per_epoch(self.train_examples, batch_size)

    def recipe_for(self, values: dict[str, Any]) -> Recipe:
        """A trial's recipe: the base with the trial's ``values`` (Keras Tuner's, Hyperband's
        bookkeeping included), trained as long as the trial trains in all."""
        recipe = self.space.recipe(self.base, values)
        rounds = values.get("tuner/epochs", self.epochs)
        length = (
            {"epochs": rounds}
            if self.steps_per_epoch is None
            else {"steps": rounds * self.steps_per_epoch}
        )
        return recipe.replace(name=f"{self.base.name}-tuned", **length)

    def check_trial(self, recipe: Recipe, rounds: int) -> None:
        """Raises ValueError when a trial of ``rounds`` rounds could not train ``recipe`` here:
        an image larger than the frame, a label map the task cannot have, or warmup as long
        as the trial."""
        frame = int(self.backbone.input_shape[1])
        if recipe.image_size is not None and recipe.image_size > frame:
            raise ValueError(
                f"image_size {recipe.image_size} does not fit the backbone's {frame}-pixel frame"
            )
        _check_label_map(
            recipe.label_map, self.task.num_classes, int(self.backbone.output_shape[-1])
        )
        steps = rounds * self.round_steps(recipe.batch_size)
        if recipe.warmup_steps >= steps:
            raise ValueError(
                f"warmup_steps {recipe.warmup_steps} leaves nothing of the shortest "
                f"trial's {steps} steps; use fewer warmup steps or longer trials"
            )

    def plan_for(self, values: dict[str, Any]) -> TrainingPlan:
        """A trial's training plan, spanning the steps this trial trains (a continued
        Hyperband trial starts a fresh optimiser over its remaining rounds)."""
        recipe = self.recipe_for(values)
        rounds = values.get("tuner/epochs", self.epochs) - values.get("tuner/initial_epoch", 0)
        steps = rounds * self.round_steps(recipe.batch_size)
        return TrainingPlan.resolve(recipe, self.train_examples, steps)

    def build(self, hp: keras_tuner.HyperParameters) -> ReprogrammedModel:
        """A fresh (zero) program with the trial's recipe, compiled with its optimiser."""
        self.space.declare(hp)
        plan = self.plan_for(hp.values)
        model = build_model(plan.recipe, self.task, backbone=self.backbone)
        model.program.trainable = not plan.recipe.freeze_program
        model.compile(optimizer=adam(plan, model), loss=task_loss(plan.recipe))
        return model

    def fit(
        self, hp: keras_tuner.HyperParameters, model: ReprogrammedModel, *args: Any, **kwargs: Any
    ) -> keras.callbacks.History:
        """Trains on the task's train split and validates on its "test" split after every epoch.

        ``kwargs`` go to `model.fit` (epochs, initial_epoch, callbacks, verbose). With the
        recipe's EMA, validation and checkpoints see the averaged program. Data-driven label
        maps (``frequency[:K]``, ``iterative[:K]``) are the trial plan's, as in
        `arnn_tf.training.trainer.Trainer.fit`; a continued trial (``initial_epoch > 0``)
        keeps a frequency map it was given and remaps an iterative one at the steps an
        uninterrupted trial would. The remapping runs after the other callbacks, so a
        checkpoint holds the map its validation score was measured with.
        """
        plan = self.plan_for(hp.values)
        per_round = self.round_steps(plan.recipe.batch_size)
        callbacks = list(kwargs.pop("callbacks", []))
        if plan.recipe.ema is not None:
            callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        first_step = kwargs.get("initial_epoch", 0) * per_round
        callbacks += plan.label_mapping(self.task, first_step)
        return model.fit(
            plan.train_data(self.task),
            validation_data=self.task.dataset("test", VALIDATION_BATCH_SIZE),
            steps_per_epoch=per_round,
            shuffle=False,
            callbacks=callbacks,
            **kwargs,
        )


def _check_label_map(spec: str, num_classes: int, num_source: int) -> None:
    """Raises ValueError when ``spec`` cannot map ``num_classes`` task classes."""
    start = learned_map_start(spec)
    if start is None or start:
        parse_label_map(spec if start is None else start, num_classes, num_source=num_source)
