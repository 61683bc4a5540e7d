"""The signature of a text program or part: raw strings (``text``), tokenised inside the graph
by the vectorizer saved with the program."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from arnn_tf.modalities.base import Probabilities, Signature
from arnn_tf.modalities.text.task import input_vectorizer

SUFFIXES = ("",)
"""The names of a text answerer's signatures after its base: the one taking strings."""


def text_signatures(
    base: str,
    probabilities_of: Probabilities,
    encoder: dict[str, Any],
    input_state: dict[str, Any],
    class_names: list[str],
    max_pixels: int,
) -> dict[str, Signature]:
    """``base``, the string signature (``encoder`` and ``max_pixels`` play no part)."""
    (name,) = (base + suffix for suffix in SUFFIXES)
    return {name: text_signature(probabilities_of, input_state, class_names)}


def text_signature(
    probabilities_of: Probabilities, input_state: dict[str, Any], class_names: list[str]
) -> Signature:
    """The string signature of a text program or part: ``text`` (string [batch]) in,
    tokenised by the vectorizer of ``input_state``. Bytes that are not UTF-8 become U+FFFD (the
    replacement character) rather than failing the request; an empty text is the padding
    tokens' frame; text past the vectorizer's sequence length is cut."""
    vectorizer = input_vectorizer(input_state)
    names = tf.constant(class_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def predict_text(text: tf.Tensor) -> dict[str, tf.Tensor]:
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
        ids = tf.cast(vectorizer(text), tf.int32)
        probabilities = tf.cast(probabilities_of(ids), tf.float32)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "class_names": tf.gather(names, class_ids),
        }

    return Signature(predict_text, "text", np.array([b""], dtype=object), (vectorizer,))
