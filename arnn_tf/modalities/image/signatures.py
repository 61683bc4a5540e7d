"""The signatures of an image program or part: uint8 pixels (``images``), and encoded image
files (``image_bytes``) decoded and checked inside the graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from arnn_tf.modalities.image.decoding import decode_image
from arnn_tf.modalities.base import Probabilities, Signature

SUFFIXES = ("", "_bytes")
"""The names of an image answerer's signatures after its base: pixels, then image files."""


def image_signatures(
    base: str,
    probabilities_of: Probabilities,
    encoder: dict[str, Any],
    input_state: None,
    class_names: list[str],
    max_pixels: int,
) -> dict[str, Signature]:
    """``base`` (pixels) and ``base_bytes`` (image files) for images of the shape the
    serialised ``encoder`` reads."""
    shape = tuple(int(v) for v in encoder["config"]["task_image_shape"])
    pixels = pixels_function(probabilities_of, class_names, shape)
    pixels_name, bytes_name = (base + suffix for suffix in SUFFIXES)
    return {
        pixels_name: Signature(pixels, "images", np.zeros((1, *shape), "uint8")),
        bytes_name: Signature(
            bytes_function(pixels, shape, max_pixels), "image_bytes", blank_png(shape)
        ),
    }


def pixels_function(
    probabilities_of: Probabilities, class_names: list[str], shape: tuple[int, int, int]
) -> Any:
    """The pixel signature: checks the input's shape, then probabilities, ids and names."""
    names = tf.constant(class_names)
    expected = tf.constant(shape, dtype=tf.int32)
    shape_error = f"images must be uint8 [batch, {shape[0]}, {shape[1]}, {shape[2]}]; got shape"

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.uint8, name="images")])
    def predict(images: tf.Tensor) -> dict[str, tf.Tensor]:
        # The model server feeds tensors without checking the placeholder's shape: check it here.
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(images)[1:], expected)), [shape_error, tf.shape(images)]
        )
        with tf.control_dependencies([check]):
            probabilities = tf.cast(probabilities_of(tf.identity(images)), tf.float32)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "class_names": tf.gather(names, class_ids),
        }

    return predict


def bytes_function(pixels: Any, shape: tuple[int, int, int], max_pixels: int) -> Any:
    """The bytes signature: decodes each of ``image_bytes``, then runs the pixel one."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def predict_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        indices = tf.range(tf.size(image_bytes, out_type=tf.int64))
        images = tf.map_fn(
            lambda item: decode_image(item[0], item[1], shape, max_pixels),
            (image_bytes, indices),
            fn_output_signature=tf.TensorSpec(shape, tf.uint8),
        )
        return pixels(images)

    return predict_bytes


def blank_png(shape: tuple[int, int, int]) -> np.ndarray:
    """One black PNG of ``shape``: a bytes signature's warm-up input, decoded like real ones."""
    return np.array([tf.io.encode_png(tf.zeros(shape, tf.uint8)).numpy()], dtype=object)
