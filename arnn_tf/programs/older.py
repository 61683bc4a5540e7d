"""The reader of older saved programs: formats 1 to 5 as the current format's parts.

Formats 1 to 4 held one task: its encoder (format 4) or, in formats 1 to 3, the placement
(or the concealment) and the program in one layer, with a concealed program's host photo in
``host_image.npy``, read as the input encoder and frame program that give the same
``X_adv``; the label map's groups in ``program.json`` and a learned map's arrays (format 3
on) in ``label_map.npz``; the encoder's weights in ``encoder.npz`` and the input state in
``input.json`` (format 4). They are read as a program of one part. Format 5 kept a program of
several parts as the current format does, under another key. Each is saved again in the
current format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from arnn_tf.modalities.base import renamed_setting
from arnn_tf.modalities.encoders import encoder_class
from arnn_tf.modalities.image.model import concealment_and_program, image_placement_and_program
from arnn_tf.programs.format import comparable_config
from arnn_tf.programs.parts import SavedPart, read_learned_map, read_parts


def older_program(
    path: Path, document: dict[str, Any]
) -> tuple[dict[str, Any], tuple[SavedPart, ...]]:
    """The frame program's settings and the parts of a program of format 1 to 5."""
    if "members" in document:  # format 5
        return _clipping(document["program"]), read_parts(path, document["members"])
    if document.get("program_layer", "AdversarialProgram") == "FrameProgram":  # format 4
        program, encoder = _clipping(document["program"]), _read_encoder(path, document)
    else:
        program, encoder = _one_layer(path, document)
    task = document["task"]
    learned = _learned(document)
    part = SavedPart(
        task["name"],
        task["class_names"],
        *encoder[:2],
        document["label_map"]["groups"],
        read_learned_map(path / "label_map.npz") if learned else None,
        encoder[2],
    )
    return program, (part,)


def _clipping(program: dict[str, Any]) -> dict[str, Any]:
    """A frame program's settings; saved before it could skip its clip, it clipped."""
    return {"clip": True, **program}


def _learned(document: dict[str, Any]) -> bool:
    """Whether a one-task program's label map is learned: from format 3 on, a map saved
    without groups."""
    return document.get("format_version", 1) >= 3 and not document["label_map"]["groups"]


def _one_layer(path: Path, document: dict[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """A program of format 1, 2 or 3 as the frame program's settings and (encoder config, its
    weights, no input state) of the same X_adv."""
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


def _read_encoder(path: Path, document: dict[str, Any]) -> tuple[Any, ...]:
    """(encoder config, its weights, the input state) of a format-4 program."""
    try:
        encoder_class(document["encoder"])
    except ValueError as error:
        raise ValueError(f"{path / 'program.json'}: {error}") from None
    try:
        weights = []
        has_weights = bool(keras.saving.deserialize_keras_object(document["encoder"]).weights)
        if (path / "encoder.npz").is_file() or has_weights:
            with np.load(path / "encoder.npz", allow_pickle=False) as arrays:
                weights = [arrays[str(i)] for i in range(len(arrays.files))]
        state_file = path / "input.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else None
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} holds a program behind an input encoder but no {Path(error.filename).name}"
        ) from None
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{path}: the input encoder's files are unreadable: {error}") from None
    return document["encoder"], weights, state


def _load_host_image(path: Path, expected: tuple[int, ...]) -> np.ndarray:
    """A format-2 (concealed) program's host photo, checked to be ``expected``'s shape."""
    try:
        host_image = np.load(path / "host_image.npy", allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} holds a concealed program but no host_image.npy "
            "(the host photo it is hidden in)"
        ) from None
    if host_image.shape != expected:
        raise ValueError(
            f"{path / 'host_image.npy'} has shape {host_image.shape}, expected {expected}"
        )
    return host_image
