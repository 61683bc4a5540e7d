"""Shared round-trip checks for every layer and model kind, in the manner of keras-hub's
`run_serialization_test`: what is saved comes back and answers exactly as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.export import export_programs
from arnn_tf.programs.saved import SavedProgram


def run_layer_serialization_test(layer: keras.layers.Layer, inputs: Any, tmp_path: Path,
                                 init_extras: dict[str, Any] | None = None) -> None:
    """The layer's config survives JSON and rebuilds an equal layer; with its weights copied
    the rebuilt layer answers the same; Keras' serialisation and a `.keras` file of a model
    holding it give the same answers. ``inputs`` is an array, or a list of arrays for a layer
    of several inputs. ``init_extras`` are constructor arguments a config leaves out on
    purpose (e.g. a concealed program's host photo, kept as a weight)."""
    expected = keras.ops.convert_to_numpy(layer(inputs))
    config = json.loads(json.dumps(layer.get_config()))
    copy = type(layer).from_config({**config, **(init_extras or {})})
    copy(inputs)
    assert json.loads(json.dumps(copy.get_config())) == config
    copy.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copy(inputs)), expected, atol=1e-6)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert type(keras.saving.deserialize_keras_object(serialized)) is type(layer)
    arrays = inputs if isinstance(inputs, list) else [inputs]
    model_in = [keras.Input(x.shape[1:], dtype=str(x.dtype)) for x in arrays]
    holder = keras.Model(model_in, layer(model_in if isinstance(inputs, list) else model_in[0]))
    holder.save(tmp_path / f"{layer.name}.keras")
    restored = keras.saving.load_model(tmp_path / f"{layer.name}.keras")
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, atol=1e-6)


def run_program_round_trip_test(model: keras.Model, inputs: Any, tmp_path: Path,
                                program: SavedProgram,
                                served: list[tuple[str, dict[str, Any], Any]] | None = None) -> None:
    """A reprogrammed model answers the same after a `.keras` save and load, as its saved
    ``program`` (`SavedProgram.from_model` or `from_parts` of it) saved, loaded and
    rebuilt, and as a TF Serving export. ``served`` lists (signature, its inputs, the model
    inputs they stand for; None: ``inputs``), by default ``serving_default`` given ``inputs``
    as images; each answer is checked against the model's (a shared-program model's part
    signatures against that part's model, in the order listed)."""
    expected = model.predict(inputs, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, atol=1e-6)
    path = program.save(tmp_path / "program")
    rebuilt = SavedProgram.load(path).build_model()
    np.testing.assert_allclose(rebuilt.predict(inputs, verbose=0), expected, atol=1e-6)
    export = tf.saved_model.load(str(export_programs([path], tmp_path / "export")))
    for i, (signature, request, model_inputs) in enumerate(
            served or [("serving_default", {"images": inputs}, None)]):
        answering = model.part_model(i) if hasattr(model, "part_model") else model
        wanted = answering.predict(inputs if model_inputs is None else model_inputs, verbose=0)
        answer = export.signatures[signature](**{k: tf.constant(v) for k, v in request.items()})
        np.testing.assert_allclose(answer["probabilities"].numpy(), wanted, atol=1e-5)
