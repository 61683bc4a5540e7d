"""What a modality supplies (`Modality`) and the serving signature every modality makes.

The rest of the library reads a task's or a saved program's ``modality`` name and asks the
registry (`arnn_tf.modalities.registry`) for these, instead of branching on the name itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import numpy as np
import tensorflow as tf


class Signature(NamedTuple):
    """A signature's traced function, its input's name and a one-example input for warm-up,
    and what else the SavedModel must keep for it to run (a text program's vectorizer)."""

    function: Any
    input_name: str
    example: np.ndarray
    resources: tuple[Any, ...] = ()


Probabilities = Callable[[tf.Tensor], tf.Tensor]
"""A model's inputs (uint8 images [batch, h, w, c], or token ids [batch, length]) -> class
probabilities [batch, classes]."""


def renamed_setting(config: dict[str, Any], older: str, name: str) -> dict[str, Any]:
    """An encoder's settings with ``name`` where a config saved before the setting kept its
    recipe name has ``older``."""
    config = dict(config)
    if older in config:
        config[name] = config.pop(older)
    return config


@dataclasses.dataclass(frozen=True)
class Modality:
    """One kind of task input (images, text): how it is encoded, modelled, served and asked.

    Attributes:
        name: the kind, as tasks and saved programs name it ("image", "text").
        encoder_for: ``(recipe, task, frame_size, name) -> input encoder`` for one part.
        model_for: ``(recipe, task, backbone) -> ReprogrammedModel`` for a one-part task.
        signatures: ``(base, probabilities_of, encoder, input_state, class_names,
            max_pixels) -> {name: Signature}``, the serving signatures of one answerer.
        signature_suffixes: the names of those signatures after their base, in order.
        read: ``(input_encoder, input_state, named) -> model inputs`` for what a user names
            on the command line (image files, or texts), as a part's encoder reads them.
    """

    name: str
    encoder_for: Callable[..., Any]
    model_for: Callable[..., Any]
    signatures: Callable[..., dict[str, Signature]]
    signature_suffixes: tuple[str, ...]
    read: Callable[[Any, Any, list[str]], np.ndarray]
