"""`AnswerReplay`: the map's warmup answers kept, to refit the learned map on them for free.

While W is held (a black-box run's map warmup) every answer is the served network's output
for a training image under the same W, so the answers of all the warmup's steps are one data
set for the map. One pass of SGD over them (the warmup itself) leaves the map far from what
they can teach it; refitting it for a few passes over the stored answers when the warmup ends
costs no query and gives W's first estimates a better-trained map to be read through
(`EXPERIMENTS.md`). TensorFlow-specific: the refit is a `tf.function` over the map's weights.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.training.losses import per_example_loss

MAP_REFIT_RATE_SCALE = 0.1
"""The refit's Adam rate, a tenth of the recipe's: many passes over the same answers."""


class AnswerReplay:
    """The answers of the steps taken under one W: each step's logits, labels and part sizes.

    `add` keeps a step's; `refit` trains the model's learned maps on all of them for
    ``epochs`` passes (in the order they came, batch by batch) and forgets them. `state` and
    `restore` carry them through a checkpoint, so an interrupted warmup loses none.
    """

    def __init__(self) -> None:
        self._steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, logits: np.ndarray, labels: Any, sizes: list[int]) -> None:
        """Keeps one step's answers ``[batch, classes]``, its labels and its parts' sizes."""
        self._steps.append(
            (
                np.asarray(logits, "float32"),
                np.asarray(labels, "int64"),
                np.asarray(sizes, "int64"),
            )
        )

    def refit(self, model: ReprogrammedModel, epochs: int, learning_rate: float) -> None:
        """Trains the model's label maps on the kept answers for ``epochs`` passes (Adam at
        ``learning_rate`` times `MAP_REFIT_RATE_SCALE`, its own optimiser: the run's keeps its
        step count), and forgets them."""
        weights = [w for m in model.label_maps for w in m.trainable_weights]
        if not self._steps or not weights or epochs < 1:
            self._steps = []
            return
        optimizer = keras.optimizers.Adam(learning_rate * MAP_REFIT_RATE_SCALE)

        @tf.function(reduce_retracing=True)
        def step(logits: tf.Tensor, labels: tf.Tensor, sizes: tuple[int, ...]) -> None:
            with tf.GradientTape() as tape:
                probabilities = model.answers(logits, list(sizes))
                loss = keras.ops.mean(per_example_loss(model, labels, probabilities))
            optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))

        for _ in range(epochs):
            for x, y, sizes in self._steps:
                step(tf.constant(x), tf.constant(y), tuple(int(n) for n in sizes))
        self._steps = []

    def state(self) -> dict[str, np.ndarray]:
        """The kept answers by name, for a checkpoint (none when none are kept): all steps'
        logits and labels end to end, and each step's part sizes, which split them again."""
        if not self._steps:
            return {}
        logits, labels, sizes = zip(*self._steps)
        return {
            "replay_logits": np.concatenate(logits),
            "replay_labels": np.concatenate(labels),
            "replay_sizes": np.stack(sizes),
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Takes back a checkpoint's `state` (nothing if it holds none)."""
        if "replay_logits" not in state:
            return
        sizes = np.asarray(state["replay_sizes"], "int64")
        starts = np.cumsum(sizes.sum(axis=1))[:-1]
        logits = np.split(np.asarray(state["replay_logits"], "float32"), starts)
        labels = np.split(np.asarray(state["replay_labels"], "int64"), starts)
        self._steps = list(zip(logits, labels, sizes))
