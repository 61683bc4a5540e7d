"""`StandIn`: a local network that gives a black-box run W's gradient (TensorFlow-specific).

The served network is only asked for the batch under W (one frame an image); W's gradient is
backpropagated through the stand-in and the model's maps instead of estimated. With a
``rate`` the stand-in is also fitted, at every step that trains W, to the served answers it
has just been given (the KL divergence of its softmax from theirs, Adam at that rate), so it
learns the served network where the program leads, at no extra query (AReS fits its stand-in
to one query an image). Its weights and optimiser are checkpoint arrays, so a resumed run goes on
with the same stand-in.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.training.losses import per_example_loss


class StandIn:
    """``network`` (frozen unless ``rate``) in the served network's place for W's gradient."""

    def __init__(self, network: keras.Model, rate: float | None = None) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"the stand-in's rate must be a number > 0, got {rate}")
        self.network = network
        self.network.trainable = rate is not None  # fitted to the answers, or held
        self.rate = rate
        self.optimizer = None if rate is None else keras.optimizers.Adam(rate)

    def check(self, model: ReprogrammedModel) -> None:
        """Raises ValueError when the stand-in cannot take the model's frames or answer in
        the served network's classes; builds its optimiser."""
        frame, n = tuple(self.network.input_shape[1:]), model.program.frame_size
        classes = int(self.network.output_shape[-1])
        wanted = model.label_maps[0].num_source_classes
        if frame != (n, n, 3) or classes != wanted:
            raise ValueError(
                f"the stand-in network {self.network.name!r} takes {frame} frames and answers "
                f"{classes} classes; the program's frames are {n}x{n}x3 and its maps read "
                f"{wanted} classes"
            )
        if self.optimizer is not None:
            self.optimizer.build(self.network.trainable_variables)

    def fit(self, frames: Any, served: Any) -> None:
        """One step of the stand-in towards the ``served`` logits of ``frames`` (the
        cross-entropy of its softmax against theirs: the KL divergence up to a constant);
        nothing without a rate."""
        if self.optimizer is None:
            return
        variables = self.network.trainable_variables
        answers = tf.nn.softmax(tf.cast(served, tf.float32))
        with tf.GradientTape() as tape:
            mine = self.network(frames, training=False)
            gaps = tf.nn.softmax_cross_entropy_with_logits(labels=answers, logits=mine)
            loss = tf.reduce_mean(gaps)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    def gradient(
        self, model: ReprogrammedModel, inputs: Any, sizes: list[int], labels: tf.Tensor
    ) -> Any:
        """The task loss's gradient in W on the batch ``inputs`` (``sizes``: each part's rows),
        through the stand-in and the maps."""
        with tf.GradientTape() as tape:
            logits = self.network(model.adversarial_inputs(inputs), training=False)
            probabilities = model.answers(logits, sizes)
            loss = keras.ops.mean(per_example_loss(model, labels, probabilities))
        return tape.gradient(loss, model.program.weight)

    def state(self) -> dict[str, np.ndarray]:
        """A fitted stand-in's weights and optimiser, by name (nothing for a frozen one)."""
        if self.optimizer is None:
            return {}
        arrays = {f"stand_in/{i}": v.numpy() for i, v in enumerate(self.network.weights)}
        for i, v in enumerate(self.optimizer.variables):
            arrays[f"stand_in_optimizer/{i}"] = keras.ops.convert_to_numpy(v)
        return arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Takes back what `state` gave (after `check`)."""
        if self.optimizer is None:
            return
        for i, v in enumerate(self.network.weights):
            v.assign(arrays[f"stand_in/{i}"])
        for i, v in enumerate(self.optimizer.variables):
            v.assign(arrays[f"stand_in_optimizer/{i}"])
