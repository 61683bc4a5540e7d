"""Warm starts: a model given a saved program's ``W`` (and its encoder's weights), so training
continues from it instead of from zero, after checking the two are alike."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from arnn_tf.layers.label_mapping import LinearLabelMap
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.programs.format import comparable_config, layer_settings
from arnn_tf.programs.mismatch import ProgramMismatchError


def warm_start(saved: Any, model: ReprogrammedModel, *, relabel: bool = False) -> None:
    """Gives ``model`` the `SavedProgram` ``saved``'s ``W`` (and each part's encoder weights
    and learned map), so training continues from it (a further schedule after a finished run,
    or fine-tuning) instead of from zero.

    ``model`` must be built on the same backbone with the same program settings (the
    weight of ``||W||^2`` may differ), the same parts and, unless ``relabel``, the same label
    maps. With
    ``relabel`` (a data-driven map, which training computes from the data before its first
    step) the model keeps its own map, so this program's map may differ, even in how many
    ImageNet classes each task class has. Raises ProgramMismatchError otherwise.
    """
    saved.check_backbone(model.backbone)
    if len(model.encoders) != len(saved.parts):
        raise ProgramMismatchError(
            f"the program to start from has {len(saved.parts)} parts, this model "
            f"{len(model.encoders)}"
        )
    settings = comparable_config(model.program)
    differing = sorted(
        key
        for key in set(settings) | set(saved.program_config)
        if key != "l2" and settings.get(key) != saved.program_config.get(key)
    )
    if differing:
        raise ProgramMismatchError(
            "the program to start from was trained with other program settings: "
            + ", ".join(
                f"{key} {saved.program_config.get(key)!r} (here {settings.get(key)!r})"
                for key in differing
            )
        )
    for i, part in enumerate(saved.parts):
        _warm_start_map(part, model.label_maps[i], saved.label_map, relabel)
        _warm_start_encoder(part, model.encoders[i])
    model.program.weight.assign(saved.weight)


def _warm_start_map(part: Any, label_map: Any, spec: str, relabel: bool) -> None:
    """Gives a learned ``label_map`` the saved ``part``'s parameters, when it has some; a fixed
    map must be the part's own, unless ``relabel`` (training computes it afresh)."""
    if label_map.num_classes != len(part.class_names):
        raise ProgramMismatchError(
            f"the program to start from has {len(part.class_names)} task "
            f"classes, this model {label_map.num_classes}"
        )
    if isinstance(label_map, LinearLabelMap):
        if part.learned_map is not None:  # a fixed map's program starts the model's own map
            label_map.set_parameters(*part.learned_map)
    elif not relabel and (part.learned_map is not None or label_map.groups != part.label_groups):
        raise ProgramMismatchError(
            f"the program to start from was trained with label map {spec!r}; "
            "train with the same map"
        )


def _warm_start_encoder(part: Any, encoder: keras.layers.Layer) -> None:
    """Gives ``encoder`` the saved ``part``'s encoder weights (a text part's table); the
    encoders must be alike, tables of the same size (same vocabulary size), and their fixed
    weights (a host photo) equal."""
    here = keras.saving.serialize_keras_object(encoder)
    # through the layer, so a config saved under older setting names reads as a current one
    theirs = keras.saving.serialize_keras_object(
        keras.saving.deserialize_keras_object(part.encoder)
    )
    if here["class_name"] != theirs["class_name"]:
        raise ProgramMismatchError(
            f"the program to start from reads its inputs through {theirs['class_name']}, "
            f"this model through {here['class_name']}"
        )
    here, theirs = layer_settings(here["config"]), layer_settings(theirs["config"])
    differing = sorted(k for k in set(here) | set(theirs) if here.get(k) != theirs.get(k))
    if differing:
        raise ProgramMismatchError(
            "the program to start from has another input encoder: "
            + ", ".join(f"{k} {theirs.get(k)!r} (here {here.get(k)!r})" for k in differing)
        )
    for variable, value in zip(encoder.weights, part.encoder_weights):
        fixed = not variable.trainable  # only fixed weights are compared, not the table
        if fixed and not np.array_equal(keras.ops.convert_to_numpy(variable.value), value):
            raise ProgramMismatchError(
                f"the program to start from has another {variable.name} in its input "
                "encoder (a host photo is fixed, not trained)"
            )
    encoder.set_weights(part.encoder_weights)
