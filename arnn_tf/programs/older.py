"""The reader of older saved programs: formats 1 to 3 as the current format's parts.

Image programs of formats 1 to 3 held the placement (or the concealment) and the program in
one layer, with a concealed program's host photo in ``host_image.npy``; they are read as the
input encoder and frame program that give the same ``X_adv``, and saved again in the current
format. Formats before 3 had no learned label maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from arnn_tf.modalities.image.model import concealment_and_program, image_placement_and_program
from arnn_tf.modalities.base import renamed_setting
from arnn_tf.programs.format import HOST_IMAGE_FILE, comparable_config

OLDER_LAYERS = ("AdversarialProgram", "ConcealedProgram")
"""The program layers of formats 1 to 3 (format 4 on: "FrameProgram")."""


def older_program_and_encoder(
    path: Path, document: dict[str, Any]
) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The frame program's settings and (encoder config, its weights, no input state) of a
    program of format 1, 2 or 3, converted to the encoder and frame program of the same X_adv."""
    layer = document.get("program_layer", "AdversarialProgram")
    config = document["program"]
    if layer == "AdversarialProgram":  # formats 1 and 3
        encoder, program = image_placement_and_program(
            **renamed_setting(config, "program_covers_image", "full_program")
        )
    elif layer == "ConcealedProgram":  # format 2
        expected = (config["frame_size"],) * 2 + (3,)
        encoder, program = concealment_and_program(
            config["frame_size"],
            config["task_image_shape"],
            _load_host_image(path, expected),
            config["scale"],
            config["permutation_seed"],
            config.get("l2", 0.0),
        )
    else:
        raise ValueError(f"{path / 'program.json'}: unknown program layer {layer!r}")
    serialized = keras.saving.serialize_keras_object(encoder)
    return comparable_config(program), (serialized, encoder.get_weights(), None)


def map_is_learned(document: dict[str, Any]) -> bool:
    """Whether a program's one label map is learned: from format 3 on, a map saved without
    groups (format 5's parts say so of their own maps)."""
    version = document.get("format_version", 1)
    return version >= 3 and not document["label_map"]["groups"] and "members" not in document


def _load_host_image(path: Path, expected: tuple[int, ...]) -> np.ndarray:
    """A format-2 (concealed) program's host photo, checked to be ``expected``'s shape."""
    try:
        host_image = np.load(path / HOST_IMAGE_FILE, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} holds a concealed program but no {HOST_IMAGE_FILE} "
            "(the host photo it is hidden in)"
        ) from None
    if host_image.shape != expected:
        raise ValueError(
            f"{path / HOST_IMAGE_FILE} has shape {host_image.shape}, expected {expected}"
        )
    return host_image


