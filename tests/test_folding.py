"""Folding frozen batch norm into convolutions keeps the network's function."""

import keras
import numpy as np

from arnn_tf.backbones import build_backbone
from arnn_tf.backbones.efficientnet_lite import efficientnet_lite0
from arnn_tf.backbones.folding import FoldedLayer, fold_batch_norms, fold_zero_padding


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
    folded = fold_batch_norms(model)
    images = np.random.default_rng(1).normal(size=(4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    remaining = [layer for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(remaining) == 1  # the one after a convolution with two consumers


def test_folded_efficientnet_lite0_has_no_batch_norm_and_the_same_logits():
    network = efficientnet_lite0("imagenet")
    folded = fold_batch_norms(network)
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
    folded = fold_zero_padding(model)
    paddings = [layer for layer in folded.layers if isinstance(layer, keras.layers.ZeroPadding2D)]
    assert [layer.padding for layer in paddings] == [((3, 3), (3, 3))]
    convolutions = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    assert sorted(layer.padding for layer in folded.layers if isinstance(layer, convolutions)) == [
        "same", "same", "valid"]
    images = np.random.default_rng(2).normal(size=(3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_built_efficientnet_lite0_has_no_padding_or_batch_norm_layers():
    backbone = build_backbone("efficientnet_lite0")
    layers = backbone.get_layer("efficientnet_lite0").layers
    assert not any(isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.BatchNormalization)) for layer in layers)
    assert sum(isinstance(layer, FoldedLayer) for layer in layers) > 40
