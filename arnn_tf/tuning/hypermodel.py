"""`ReprogrammingHyperModel`: one trial's model and training, around a shared frozen backbone.

Building the backbone once and only a fresh program and label map per trial keeps trials
cheap: a trial costs its training steps, not a backbone's construction.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner

from arnn_tf.label_maps import SAMPLE_IMAGES, FrequencyLabelMapping, data_driven_kind
from arnn_tf.model import ReprogrammedModel, build_reprogrammed_model
from arnn_tf.tasks import Task
from arnn_tf.training import paper_learning_rate, steps_per_epoch
from arnn_tf.tuning.space import SearchSpace

VALIDATION_BATCH_SIZE = 64
LABEL_MAP_BATCH_SIZE = 100


class ReprogrammingHyperModel(keras_tuner.HyperModel):
    """Builds a reprogrammed model for each trial around one shared frozen backbone.

    Args:
        backbone: the frozen backbone, built once by the caller.
        task: trained on its "train" split and scored on its "test" split (pass a
            `holdout_split` so the real test split stays out of the search).
        space: the search space (see `SearchSpace.fit_to`).
        steps_per_epoch: batches per Keras epoch; None for one pass over the train split.
        seed: seeds data shuffling and random label maps.
    """

    def __init__(self, backbone: keras.Model, task: Task, space: SearchSpace, *,
                 steps_per_epoch: int | None = None, seed: int = 0) -> None:
        super().__init__(name="reprogramming")
        self.backbone = backbone
        self.task = task
        self.space = space
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed

    def build(self, hp: keras_tuner.HyperParameters) -> ReprogrammedModel:
        """A fresh (zero) program with the trial's settings, compiled with the paper's
        optimiser."""
        values = {p.name: p.declare(hp) for p in self.space.parameters}
        size = values["image_size"]
        model = build_reprogrammed_model(
            self.backbone, self.task.image_shape, self.task.num_classes,
            label_map=values["label_map"], seed=self.seed,
            image_size=(size, size) if size else None, border_width=values["border_width"] or None,
            linf_bound=values["linf_bound"] or None, l2=values["l2"])
        full_epoch = steps_per_epoch(self.task.num_examples("train"), values["batch_size"])
        schedule = paper_learning_rate(values["learning_rate"], full_epoch)
        model.compile(optimizer=keras.optimizers.Adam(schedule))
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: ReprogrammedModel, *args: Any,
            **kwargs: Any) -> keras.callbacks.History:
        """Trains on the task's train split and validates on its "test" split after every epoch.

        ``kwargs`` go to `model.fit` (epochs, initial_epoch, callbacks, verbose). Data-driven
        label maps (``frequency[:K]``, ``iterative[:K]``) are computed from the train split as
        in `arnn_tf.training.fit_program`; a continued trial (``initial_epoch > 0``) keeps a
        frequency map it was given, and recomputes an iterative one before its first epoch as
        an uninterrupted trial would. The remapping runs after the other callbacks, so a
        checkpoint holds the map its validation score was measured with.
        """
        batch_size = hp.get("batch_size")
        train = self.task.dataset("train", batch_size, shuffle=True, repeat=True, seed=self.seed,
                                  drop_remainder=True)
        validation = self.task.dataset("test", VALIDATION_BATCH_SIZE)
        per_epoch = self.steps_per_epoch or steps_per_epoch(self.task.num_examples("train"),
                                                            batch_size)
        callbacks = list(kwargs.pop("callbacks", []))
        data_driven = data_driven_kind(hp.get("label_map"))
        if data_driven is not None:
            kind, per_class = data_driven
            callbacks.append(FrequencyLabelMapping(
                self.task.sample("train", SAMPLE_IMAGES, LABEL_MAP_BATCH_SIZE, seed=self.seed),
                per_class, iterative=kind == "iterative", steps_per_epoch=per_epoch,
                first_step=kwargs.get("initial_epoch", 0) * per_epoch))
        return model.fit(train, validation_data=validation, steps_per_epoch=per_epoch,
                         shuffle=False, callbacks=callbacks, **kwargs)
