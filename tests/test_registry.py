"""Every registered backbone builds at its registered size; any may run at another size."""

import keras
import numpy as np
import pytest

from arnn_tf.backbones import BACKBONES, build_backbone, weights_fingerprint
from arnn_tf.backbones.registry import with_input_size
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.programs.saved import ProgramMismatchError, SavedProgram


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_registered_backbone_builds_with_random_weights(name):
    backbone = build_backbone(name, None, seed=1)
    size = BACKBONES[name].input_size
    assert tuple(backbone.input_shape) == (None, size, size, 3)
    assert tuple(backbone.output_shape) == (None, 1000)
    assert not backbone.trainable_weights


def test_a_backbone_runs_at_another_size_with_the_same_weights():
    network = keras.applications.MobileNetV2(weights=None, classifier_activation=None)
    resized = with_input_size(network, 160)
    assert tuple(resized.input_shape) == (None, 160, 160, 3)
    assert weights_fingerprint(resized) == weights_fingerprint(network)
    logits = resized.predict(np.zeros((1, 160, 160, 3), "float32"), verbose=0)
    assert logits.shape == (1, 1000) and np.all(np.isfinite(logits))


def test_build_backbone_takes_an_input_size():
    backbone = build_backbone("efficientnet_lite0", None, input_size=96)
    assert tuple(backbone.input_shape) == (None, 96, 96, 3)
    assert tuple(backbone.output_shape) == (None, 1000)


def test_a_network_that_cannot_take_the_size_is_a_clear_error():
    inputs = keras.Input((48, 48, 3))
    flat = keras.Model(inputs, keras.layers.Dense(1000)(keras.layers.Flatten()(inputs)), name="flat")
    with pytest.raises(ValueError, match=r"cannot take 64x64 frames \(frame_size\)$"):
        with_input_size(flat, 64)


def test_tiny_cnn_takes_any_frame():
    assert tuple(build_backbone("tiny_cnn", None, input_size=64).input_shape) == (None, 64, 64, 3)


def test_a_program_on_a_resized_backbone_reloads_at_its_frame_size(tmp_path):
    backbone = build_backbone("efficientnet_lite0", None, seed=2, input_size=64)
    model = build_reprogrammed_model(backbone, (16, 16, 3), 2, label_map="first")
    model.program.weight.assign(np.random.default_rng(0).normal(size=(64, 64, 3)))
    path = SavedProgram.from_model(model, backbone_name="efficientnet_lite0", weights=None, seed=2,
                                   task_name="toy", class_names=["a", "b"]).save(tmp_path / "p")
    loaded = SavedProgram.load(path)
    assert loaded.frame_size == 64
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3)).astype("uint8")
    np.testing.assert_allclose(loaded.build_model().predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-6)
    with pytest.raises(ProgramMismatchError, match="this program is 64x64"):
        loaded.build_model(build_backbone("efficientnet_lite0", None, seed=2))


def test_a_frame_too_small_for_the_network_names_the_smallest_it_takes():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 5, strides=2, padding="valid")(inputs)
    x = keras.layers.Conv2D(4, 5, strides=2, padding="valid")(x)
    outputs = keras.layers.Dense(1000)(keras.layers.GlobalAveragePooling2D()(x))
    network = keras.Model(inputs, outputs, name="two_convs")
    with pytest.raises(ValueError, match=r"cannot take 8x8 frames \(frame_size\); the smallest "
                                         r"it takes is 13x13$"):
        with_input_size(network, 8)
    assert with_input_size(network, 13).output_shape == (None, 1000)
