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
from arnn_tf.programs import SavedProgram


def run_layer_serialization_test(layer: keras.layers.Layer, inputs: np.ndarray, tmp_path: Path,
                                 init_extras: dict[str, Any] | None = None) -> None:
    """The layer's config survives JSON and rebuilds an equal layer; with its weights copied
    the rebuilt layer answers the same; Keras' serialisation and a `.keras` file of a model
    holding it give the same answers. ``init_extras`` are constructor arguments a config
    leaves out on purpose (e.g. a concealed program's host photo, kept as a weight)."""
    expected = keras.ops.convert_to_numpy(layer(inputs))
    config = json.loads(json.dumps(layer.get_config()))
    copy = type(layer).from_config({**config, **(init_extras or {})})
    copy(inputs)
    assert json.loads(json.dumps(copy.get_config())) == config
    copy.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copy(inputs)), expected, atol=1e-6)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert type(keras.saving.deserialize_keras_object(serialized)) is type(layer)
    model_in = keras.Input(inputs.shape[1:], dtype=str(inputs.dtype))
    holder = keras.Model(model_in, layer(model_in))
    holder.save(tmp_path / f"{layer.name}.keras")
    restored = keras.saving.load_model(tmp_path / f"{layer.name}.keras")
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, atol=1e-6)


def run_program_round_trip_test(model: keras.Model, images: np.ndarray, tmp_path: Path,
                                served_inputs: dict[str, Any] | None = None,
                                **saved_program: Any) -> None:
    """A reprogrammed model answers the same after a `.keras` save and load, as a saved program
    saved, loaded and rebuilt, and as a TF Serving export (its ``serving_default``, given
    ``served_inputs``: by default the same ``images``; a text program's are raw strings).
    ``saved_program`` are `SavedProgram.from_model`'s keyword arguments."""
    expected = model.predict(images, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored.predict(images, verbose=0), expected, atol=1e-6)
    path = SavedProgram.from_model(model, **saved_program).save(tmp_path / "program")
    rebuilt = SavedProgram.load(path).build_model()
    np.testing.assert_allclose(rebuilt.predict(images, verbose=0), expected, atol=1e-6)
    served = tf.saved_model.load(str(export_programs([path], tmp_path / "export")))
    inputs = served_inputs or {"images": images}
    answer = served.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)
