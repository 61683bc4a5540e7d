"""The host photo of concealment: a natural photo that an encoder blends its task input into
(Elsayed et al. 2019, "Concealing adversarial programs"; Neekhara et al. 2022 for text).

The photo is the encoder's non-trainable weight ``host_image`` (n x n x 3 pixels in [0, 255]),
so it is saved and loaded with the encoder's weights and never trained. It is not part of the
encoder's config: an encoder made from its config holds a black photo until its weights are
loaded.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from arnn_tf.modalities.image.files import read_image
from arnn_tf.recipes import conceal_scale


def add_host_photo(layer: keras.layers.Layer, frame_size: int, pixels: Any) -> Any:
    """Adds ``layer``'s weight ``host_image`` holding ``pixels`` (None: black), checked to be
    ``frame_size`` x ``frame_size`` x 3 values in [0, 255]."""
    n = int(frame_size)
    pixels = np.zeros((n, n, 3), "float32") if pixels is None else np.asarray(pixels, "float32")
    if pixels.shape != (n, n, 3):
        raise ValueError(
            f"the host photo must be {n}x{n}x3 (the backbone's input), got shape {pixels.shape}"
        )
    if not (np.all(np.isfinite(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
        raise ValueError("the host photo's pixel values must lie in [0, 255]")
    return layer.add_weight(
        name="host_image",
        shape=(n, n, 3),
        initializer=keras.initializers.Constant(pixels),
        trainable=False,
    )


def host_frame(weight: Any, dtype: str) -> Any:
    """The host photo in the [-1, 1] range the frames are in, as ``dtype``."""
    return ops.cast(weight, dtype) / 127.5 - 1.0


def check_conceal_scale(conceal_scale: float) -> float:
    """``conceal_scale`` (alpha, the weight of the task input in the photo), checked to be in
    (0, 1]."""
    if not 0 < conceal_scale <= 1:
        raise ValueError(
            f"conceal_scale, the weight of the task input in the host photo, must be in (0, 1], "
            f"got {conceal_scale}"
        )
    return float(conceal_scale)


def recipe_host_photo(recipe: Any, frame_size: int) -> tuple[np.ndarray | None, float | None]:
    """A `arnn_tf.recipes.Recipe`'s concealment: its photo (``conceal``, a path) read as
    ``frame_size`` x ``frame_size`` RGB pixels and its weight (`arnn_tf.recipes.conceal_scale`),
    Nones when it conceals nothing."""
    size = (frame_size, frame_size)
    pixels = None if recipe.conceal is None else read_image(recipe.conceal, size, 3)
    return pixels, conceal_scale(recipe)
