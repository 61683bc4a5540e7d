"""The input encoders a saved program may name, one table for every modality.

Code that reads saved programs (loading, matching a task, export) asks an encoder's class what
it reads (``modality``, ``input_description``) instead of branching on modalities itself.
"""

from __future__ import annotations

from typing import Any

from arnn_tf.modalities.image.placement import ConcealedPlacement, ImagePlacement
from arnn_tf.modalities.text.encoder import TokenPatchEncoder

INPUT_ENCODERS: dict[str, type] = {
    cls.__name__: cls for cls in (ImagePlacement, ConcealedPlacement, TokenPatchEncoder)
}


def encoder_class(encoder: dict[str, Any]) -> type:
    """The class of a serialised input encoder (Keras' ``serialize_keras_object`` form)."""
    name = encoder.get("class_name")
    if name not in INPUT_ENCODERS:
        raise ValueError(
            f"unknown input encoder {name!r}; this arnn-tf reads {sorted(INPUT_ENCODERS)}"
        )
    return INPUT_ENCODERS[name]
