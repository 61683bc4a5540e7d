"""Folding frozen batch norms, paddings and input scaling keeps the network's function and weights."""

import keras
import numpy as np

from arnn_tf.backbones import build_backbone
from arnn_tf.backbones.efficientnet_lite import efficientnet_lite0
from arnn_tf.backbones.folding import (
    FoldedLayer,
    ScaledNormalization,
    apply_folds,
    batch_norm_fold,
    input_scaling_fold,
    zero_padding_fold,
)


def randomize_batch_norms(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(size=beta.shape),
                               rng.normal(size=mean.shape), rng.uniform(0.5, 2, variance.shape)])


def test_folding_a_small_network_keeps_its_outputs():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=True)(x)
    x = keras.layers.BatchNormalization()(x)
    shortcut = keras.layers.Conv2D(8, 1)(inputs)  # consumed twice below: must not be folded
    y = keras.layers.BatchNormalization()(shortcut)
    outputs = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x),
                                          keras.layers.GlobalAveragePooling2D()(y + shortcut)])
    model = keras.Model(inputs, outputs)
    randomize_batch_norms(model)
    folded = apply_folds(model, [batch_norm_fold(model)])
    images = np.random.default_rng(1).normal(size=(4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    remaining = [layer for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(remaining) == 1  # the one after a convolution with two consumers


def test_folded_efficientnet_lite0_has_no_batch_norm_and_the_same_logits():
    network = efficientnet_lite0("imagenet")
    folded = apply_folds(network, [batch_norm_fold(network)])
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    expected = network.predict(pixels, verbose=0)
    np.testing.assert_allclose(folded.predict(pixels, verbose=0), expected, atol=1e-3 * np.abs(expected).max())
    assert (folded.predict(pixels, verbose=0).argmax(-1) == expected.argmax(-1)).all()


def test_zero_padding_equal_to_same_is_folded_and_other_padding_is_kept():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(inputs)  # what "same" pads for k3 s2 on 16
    x = keras.layers.Conv2D(4, 3, strides=2)(x)
    x = keras.layers.ZeroPadding2D(((1, 2), (1, 2)))(x)  # "same" for k5 s2 on 8
    x = keras.layers.DepthwiseConv2D(5, strides=2)(x)
    y = keras.layers.ZeroPadding2D(3)(inputs)  # ResNet's stem: "same" would pad (2, 3)
    y = keras.layers.Conv2D(4, 7, strides=2)(y)
    outputs = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x),
                                          keras.layers.GlobalAveragePooling2D()(y)])
    model = keras.Model(inputs, outputs)
    folded = apply_folds(model, [zero_padding_fold(model)])
    paddings = [layer for layer in folded.layers if isinstance(layer, keras.layers.ZeroPadding2D)]
    assert [layer.padding for layer in paddings] == [((3, 3), (3, 3))]
    convolutions = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    assert sorted(layer.padding for layer in folded.layers if isinstance(layer, convolutions)) == [
        "same", "same", "valid"]
    images = np.random.default_rng(2).normal(size=(3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def _entrance_model(normalizations: int) -> keras.Model:
    """Rescaling, ``normalizations`` adapted Normalizations (as keras' EfficientNets have), Rescaling, Conv2D."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for _ in range(normalizations):
        norm = keras.layers.Normalization()
        x = norm(x)
        norm.set_weights([np.array([0.4, -0.2, 0.6]), np.array([0.04, 0.5, 2.0]), np.array(10)])
        norm.finalize_state()
    x = keras.layers.Rescaling([2.0, 3.0, 4.0], offset=0.5)(x)
    return keras.Model(inputs, keras.layers.Conv2D(2, 3)(x))


def test_entrance_scaling_becomes_one_multiply_add_with_the_same_weights(tmp_path):
    model = _entrance_model(normalizations=1)
    folded = apply_folds(model, [input_scaling_fold(model, scale=127.5, offset=127.5)])
    assert [type(layer) for layer in folded.layers[1:5]] == [FoldedLayer, ScaledNormalization, FoldedLayer,
                                                             keras.layers.Conv2D]
    images = np.random.default_rng(3).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    expected = model.predict(images * 127.5 + 127.5, verbose=0)
    np.testing.assert_allclose(folded.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert [w.path for w in folded.weights] == [w.path for w in model.weights]
    for mine, theirs in zip(folded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    folded.save(tmp_path / "folded.keras")
    reloaded = keras.saving.load_model(tmp_path / "folded.keras")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_entrance_scaling_is_left_alone_without_exactly_one_normalization():
    assert input_scaling_fold(_entrance_model(normalizations=0)) is None
    assert input_scaling_fold(_entrance_model(normalizations=2)) is None


def test_all_folds_apply_together_in_one_copy():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    norm = keras.layers.Normalization()
    x = norm(x)
    norm.set_weights([np.array([0.4, -0.2, 0.6]), np.array([0.04, 0.5, 2.0]), np.array(10)])
    norm.finalize_state()
    x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x)  # "same" for k3 s2 on 16
    x = keras.layers.Conv2D(4, 3, strides=2, use_bias=False)(x)  # its padding and its batch norm both fold
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    randomize_batch_norms(model)
    folds = [batch_norm_fold(model), zero_padding_fold(model), input_scaling_fold(model, 127.5, 127.5)]
    folded = apply_folds(model, folds)
    assert [type(layer) for layer in folded.layers[1:6]] == [FoldedLayer, ScaledNormalization, FoldedLayer,
                                                             keras.layers.Conv2D, FoldedLayer]
    conv = folded.layers[4]
    assert conv.padding == "same" and conv.use_bias
    images = np.random.default_rng(4).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(images, verbose=0),
                               model.predict(images * 127.5 + 127.5, verbose=0), rtol=1e-4, atol=1e-4)


def test_built_efficientnet_lite0_has_no_padding_batch_norm_or_rescaling_layers():
    backbone = build_backbone("efficientnet_lite0")
    layers = backbone.get_layer("efficientnet_lite0").layers
    assert not any(isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.BatchNormalization,
                                      keras.layers.Rescaling)) for layer in layers + backbone.layers)
    assert sum(isinstance(layer, ScaledNormalization) for layer in layers) == 1
    assert sum(isinstance(layer, FoldedLayer) for layer in layers) > 40
