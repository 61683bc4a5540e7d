"""What a saved program answers for inputs a user names (image files, or texts).

A program of one part answers over its classes. A program of several parts answers with the
task unknown: each input is read by every part that reads its kind (an image file at each
image part's own shape), and one softmax over all those parts' class scores
(`arnn_tf.layers.label_mapping.LabelMapping.scores`) picks among every data set's classes at once.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from arnn_tf.modalities.registry import modality
from arnn_tf.models.task_unknown import task_unknown

BATCH_SIZE = 64
"""Inputs answered at a time."""


def predict_named(saved: Any, kind: str, named: list[str]) -> tuple[np.ndarray, list[str]]:
    """Probabilities ``[len(named), classes]`` of the program ``saved`` (a
    `arnn_tf.programs.saved.SavedProgram`) for inputs of ``kind`` ("image", "text"), and the
    names of those classes."""
    read = modality(kind).read
    model = saved.build_model()
    if len(saved.parts) == 1:
        if saved.modality != kind:
            raise ValueError(
                f"{saved.task_name!r} is a program for {saved.modality} inputs, not {kind}"
            )
        inputs = read(model.encoder, saved.part.input_state, named)
        probabilities = model.predict(inputs, batch_size=BATCH_SIZE, verbose=0)
        return np.asarray(probabilities), list(saved.class_names)
    parts = [i for i, part in enumerate(saved.parts) if part.modality == kind]
    if not parts:
        raise ValueError(f"no part of the program of task {saved.task_name!r} reads {kind} inputs")
    inputs = [read(model.encoders[i], saved.parts[i].input_state, named) for i in parts]
    names = [f"{saved.parts[i].name}/{c}" for i in parts for c in saved.parts[i].class_names]
    rows = [
        keras.ops.convert_to_numpy(
            task_unknown(model, parts, [x[start : start + BATCH_SIZE] for x in inputs])
        )
        for start in range(0, len(named), BATCH_SIZE)
    ]
    return np.concatenate(rows), names
