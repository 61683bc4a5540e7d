"""A training plan: what a recipe means for one task, resolved once (TensorFlow-specific).

Every way of training reads the same plan: `arnn_tf.training.trainer.Trainer.fit` (white-box
and black-box alike) and the Keras Tuner hypermodel (`arnn_tf.tuning.hypermodel`). It fixes
the run's length in steps, the learning-rate schedule, the settings of the program's own
optimiser (``program_lr_scale``, ``program_momentum``, ``map_warmup_steps``, each under its
recipe name, its default filled in here), the training data and the callback that computes
a data-driven label map.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import keras
import tensorflow as tf

from arnn_tf.label_maps.frequency import SAMPLE_IMAGES, FrequencyLabelMapping
from arnn_tf.label_maps.specs import data_driven_kind, learned_map_start
from arnn_tf.recipes import Recipe, map_warmup, program_first_moment, program_rate_scale
from arnn_tf.tasks.base import Task
from arnn_tf.training.schedules import learning_rate_schedule, steps_per_epoch

LABEL_MAP_BATCH_SIZE = 100
"""Task images per batch when a data-driven label map reads their ImageNet logits."""


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """A recipe's run on a task with nothing left to work out.

    ``steps`` is the run's length (the recipe's steps, or its epochs of ``steps_per_epoch``
    batches over ``train_examples``); ``program_lr_scale``, ``program_momentum`` and
    ``map_warmup_steps`` are the recipe's fields with their defaults resolved.
    """

    recipe: Recipe
    train_examples: int
    steps_per_epoch: int
    steps: int
    program_lr_scale: float
    program_momentum: float
    map_warmup_steps: int

    @classmethod
    def resolve(
        cls, recipe: Recipe, train_examples: int, steps: int | None = None
    ) -> "TrainingPlan":
        """The plan of ``recipe`` on a train split of ``train_examples``, ``steps`` long when
        given (a tuning trial's remaining rounds), else as long as the recipe says."""
        per_epoch = steps_per_epoch(train_examples, recipe.batch_size)
        if steps is None:
            steps = recipe.steps if recipe.steps is not None else per_epoch * recipe.epochs
        return cls(
            recipe=recipe,
            train_examples=train_examples,
            steps_per_epoch=per_epoch,
            steps=steps,
            program_lr_scale=program_rate_scale(recipe),
            program_momentum=program_first_moment(recipe),
            map_warmup_steps=map_warmup(recipe, steps),
        )

    def schedule(self) -> keras.optimizers.schedules.LearningRateSchedule:
        """The recipe's learning-rate schedule over the plan's steps."""
        recipe = self.recipe
        return learning_rate_schedule(
            recipe.lr_schedule,
            recipe.learning_rate,
            self.steps_per_epoch,
            self.steps,
            recipe.warmup_steps,
        )

    def train_data(self, task: Task, shuffle: bool = True, first_step: int = 0) -> tf.data.Dataset:
        """``task``'s train split in the recipe's batches, repeated, shuffled by its seed and
        augmented, from batch ``first_step`` on: skipping the batches already trained on
        replays an uninterrupted run's order. A run of one epoch or less never reads an image
        twice, so it keeps no cache."""
        recipe = self.recipe
        return task.dataset(
            "train",
            recipe.batch_size,
            shuffle=shuffle,
            repeat=True,
            seed=recipe.seed,
            drop_remainder=True,
            cache=self.steps > self.steps_per_epoch,
            augment=recipe.augment,
        ).skip(first_step)

    def label_mapping(
        self,
        task: Task,
        first_step: int | None,
        verbose: bool = False,
        source: Callable[[Any, int], Any] | None = None,
    ) -> list[keras.callbacks.Callback]:
        """The callback that computes a frequency or iterative label map, if the recipe has
        one, from ``source``'s logits (None: the model's own backbone), from global step
        ``first_step`` on; None: the model's learned map is trained already, so the fixed map
        it starts from is not needed."""
        spec = self.recipe.label_map
        data_driven = data_driven_kind(spec)
        if data_driven is None or first_step is None and learned_map_start(spec):
            return []
        kind, per_class = data_driven
        tasks = task.part_tasks
        one_part = len(tasks) == 1
        share = max(1, SAMPLE_IMAGES // len(tasks))  # the sample split evenly among the parts
        counts = [self.train_examples] if one_part else [t.num_examples("train") for t in tasks]
        sizes = [min(share, count) for count in counts]
        samples = [
            t.sample("train", size, LABEL_MAP_BATCH_SIZE, seed=self.recipe.seed)
            for t, size in zip(tasks, sizes)
        ]
        mapping = FrequencyLabelMapping(
            samples[0] if one_part else samples,
            per_class,
            iterative=kind == "iterative",
            max_images=sizes[0] if one_part else sizes,
            steps_per_epoch=self.steps_per_epoch,
            first_step=first_step or 0,
            class_names=task.class_names,
            verbose=verbose,
            source=source,
        )
        return [mapping]
