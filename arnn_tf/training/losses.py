"""The training losses a recipe names (`arnn_tf.settings.LOSSES`), on task probabilities.

Both take integer labels and the model's task-class probabilities and give one loss per
example, so white-box training (`model.fit`, the multi-worker loop) and black-box training
(losses computed from the query's answers) minimise the same function. Written with
`keras.ops` only, so they work on any Keras backend.
"""

from __future__ import annotations

from typing import Any

import keras

from arnn_tf.recipes import Recipe
from arnn_tf.settings import DEFAULT_FOCAL_GAMMA


@keras.saving.register_keras_serializable(package="arnn_tf")
class FocalCrossentropy(keras.losses.Loss):
    """Focal loss ``-(1 - p)^gamma log p`` of the true class's probability ``p``.

    Computed from Keras' sparse cross-entropy ``ce`` as ``(1 - exp(-ce))^gamma * ce``, so
    ``p`` is exactly the (normalised, clipped) probability the cross-entropy uses: gamma 0 is
    the cross-entropy. Keras' own focal losses take one-hot or binary targets; this one takes
    the integer labels the rest of training uses.
    """

    def __init__(self, gamma: float = DEFAULT_FOCAL_GAMMA, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not gamma >= 0:
            raise ValueError(f"the focal loss's gamma must be a number >= 0, got {gamma!r}")
        self.gamma = float(gamma)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        cross_entropy = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        return keras.ops.power(1.0 - keras.ops.exp(-cross_entropy), self.gamma) * cross_entropy

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma}


def task_loss(recipe: Recipe) -> keras.losses.Loss:
    """The loss ``recipe.loss`` names, as a Keras loss (its ``call`` gives per-example losses)."""
    if recipe.loss == "focal":
        return FocalCrossentropy(recipe.focal_gamma)
    return keras.losses.SparseCategoricalCrossentropy()


def per_example_loss(model: keras.Model, labels: Any, probabilities: Any) -> Any:
    """The compiled model's loss for each example, unreduced (the custom loops' mean)."""
    return model.loss.call(labels, probabilities)
