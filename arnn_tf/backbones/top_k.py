"""A backbone's own answer: its top ImageNet classes for images, before any reprogramming
(what ``arnn classify`` prints; a check that a backbone and its weights load as expected)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from arnn_tf.backbones.imagenet_classes import imagenet_class_names


def imagenet_top_k(
    backbone: keras.Model, pixels: np.ndarray, top: int
) -> list[list[dict[str, Any]]]:
    """For each image (uint8 pixels [batch, n, n, 3] at the backbone's input size), its ``top``
    ImageNet classes, most probable first: index, label and softmax probability."""
    logits = backbone.predict(pixels.astype("float32") / 127.5 - 1.0, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    names = imagenet_class_names()
    top = max(1, min(top, probabilities.shape[1]))
    return [
        [
            {"index": int(i), "label": names[i], "probability": round(float(row[i]), 6)}
            for i in row.argsort()[::-1][:top]
        ]
        for row in probabilities
    ]
