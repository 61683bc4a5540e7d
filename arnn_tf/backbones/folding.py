"""Folding a frozen network's fixed per-layer work into its convolutions.

A frozen backbone's batch norm is a fixed per-channel affine map, so ``BN(conv(x, K))``
equals ``conv(x, K * s) + b`` with ``s = gamma / sqrt(var + eps)`` and
``b = beta - mean * s``. Reprogramming back-propagates through the whole network on every
step, and TensorFlow's gradient of an inference-mode batch norm still computes the
(unused) scale and offset gradients, two reductions over the batch per layer. Folding
removes those layers from the graph.

Likewise an explicit ``ZeroPadding2D`` before a "valid" convolution (how keras.applications
writes stride-2 convolutions) equals the convolution with "same" padding whenever the pad
amounts are the ones "same" picks; folding it saves a pad forward and a slice backward per
such layer.

And the chain of per-channel affine layers at a pixel-input network's entrance (our
[-1, 1] to [0, 255] scaling, keras' ``Rescaling(1/255)``, ``Normalization`` and sometimes
another ``Rescaling``) is one multiply-add; merging it saves a full-frame division and
subtraction forward and a division backward. The folded networks compute the same function.

Each ``*_fold`` function only plans its edits (a `Fold`); `apply_folds` makes them all in one
copy of the network, since copying a functional model is the slow part.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import keras
import numpy as np

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


@keras.saving.register_keras_serializable(package="arnn_tf")
class FoldedLayer(keras.layers.Layer):
    """Stands where a layer was folded into a neighbouring convolution: passes inputs on."""

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        return inputs


@dataclasses.dataclass
class Fold:
    """One fold's planned edits to a functional model, by layer name."""

    removed: set[str] = dataclasses.field(default_factory=set)
    """Layers that become pass-through `FoldedLayer`s."""
    config: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Config entries to change, per layer."""
    replacement: dict[str, Callable[[dict[str, Any]], keras.layers.Layer]] = dataclasses.field(
        default_factory=dict
    )
    """Builds a layer of another class from the (changed) config, per layer."""
    weights: dict[str, list[np.ndarray]] = dataclasses.field(default_factory=dict)
    """Weights to set instead of the original layer's, per layer."""


def apply_folds(model: keras.Model, folds: list[Fold]) -> keras.Model:
    """A copy of a functional ``model`` with every fold's edits, in one clone.

    Layers keep their names, so the copy reads like the original in summaries; layers no
    fold replaces keep the original's weights. With nothing to fold, ``model`` comes back.
    """
    removed = set().union(*(fold.removed for fold in folds))
    config: dict[str, dict[str, Any]] = {}
    replacement: dict[str, Callable[[dict[str, Any]], keras.layers.Layer]] = {}
    weights: dict[str, list[np.ndarray]] = {}
    for fold in folds:
        for name, changes in fold.config.items():
            config.setdefault(name, {}).update(changes)
        replacement.update(fold.replacement)
        weights.update(fold.weights)
    if not (removed or config or replacement):
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in removed:
            return FoldedLayer(name=layer.name)
        build = replacement.get(layer.name, layer.__class__.from_config)
        return build({**layer.get_config(), **config.get(layer.name, {})})

    folded = keras.models.clone_model(model, clone_function=clone)
    originals = {layer.name: layer for layer in model.layers}
    for layer in folded.layers:
        if layer.weights:
            layer.set_weights(weights.get(layer.name) or originals[layer.name].get_weights())
            if isinstance(layer, keras.layers.Normalization):
                layer.finalize_state()  # it reads its statistics from tensors refreshed here
    return folded


def _producer(layer: keras.layers.Layer) -> Any:
    """The layer whose output is ``layer``'s only input, or None."""
    if len(layer._inbound_nodes) != 1:
        return None
    inputs = layer._inbound_nodes[0].input_tensors
    return inputs[0]._keras_history.operation if len(inputs) == 1 else None


def _consumers(model: keras.Model) -> dict[str, list[Any]]:
    """Layer name -> the layers that use its output, once per use (None for a model output)."""
    consumers: dict[str, list[Any]] = {}
    uses = [
        (t, op) for op in model.operations for node in op._inbound_nodes for t in node.input_tensors
    ]
    for tensor, consumer in uses + [(t, None) for t in model.outputs]:
        consumers.setdefault(tensor._keras_history.operation.name, []).append(consumer)
    return consumers


def _consumer_counts(model: keras.Model) -> dict[str, int]:
    """Layer name -> how many times its output is used (by layers or as a model output)."""
    return {name: len(users) for name, users in _consumers(model).items()}


def _foldable_pairs(model: keras.Model) -> dict[str, keras.layers.BatchNormalization]:
    """Convolution name -> the batch norm that alone consumes its output."""
    consumers = _consumer_counts(model)
    pairs = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, 3):
            conv = _producer(layer)
            if (
                isinstance(conv, _CONVOLUTIONS)
                and consumers.get(conv.name) == 1
                and conv.activation in (keras.activations.linear, None)
            ):
                pairs[conv.name] = layer
    return pairs


def _folded_weights(
    conv: keras.layers.Layer, bn: keras.layers.BatchNormalization
) -> list[np.ndarray]:
    kernel = keras.ops.convert_to_numpy(conv.kernel.value).astype("float64")
    bias = keras.ops.convert_to_numpy(conv.bias.value).astype("float64") if conv.use_bias else 0.0
    channels = bn.moving_mean.shape[0]
    gamma = keras.ops.convert_to_numpy(bn.gamma.value) if bn.scale else np.ones(channels)
    beta = keras.ops.convert_to_numpy(bn.beta.value) if bn.center else np.zeros(channels)
    mean = keras.ops.convert_to_numpy(bn.moving_mean.value).astype("float64")
    variance = keras.ops.convert_to_numpy(bn.moving_variance.value).astype("float64")
    scale = gamma / np.sqrt(variance + bn.epsilon)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    return [kernel.astype("float32"), ((bias - mean) * scale + beta).astype("float32")]


def batch_norm_fold(model: keras.Model) -> Fold:
    """Fuses every convolution + batch norm pair: the batch norm becomes a pass-through, the
    convolution gets the folded kernel and a bias."""
    pairs = _foldable_pairs(model)
    return Fold(
        removed={bn.name for bn in pairs.values()},
        config={name: {"use_bias": True} for name in pairs},
        weights={name: _folded_weights(model.get_layer(name), bn) for name, bn in pairs.items()},
    )


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """The (before, after) zero padding that "same" applies along one axis of length ``size``."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _foldable_paddings(model: keras.Model) -> dict[str, str]:
    """Valid convolution name -> the zero padding, equal to "same"'s, that alone feeds it."""
    consumers = _consumer_counts(model)
    convolutions = {}
    for layer in model.layers:
        padding = _producer(layer) if isinstance(layer, _CONVOLUTIONS) else None
        if (
            not isinstance(padding, keras.layers.ZeroPadding2D)
            or consumers.get(padding.name) != 1
            or layer.padding != "valid"
            or tuple(layer.dilation_rate) != (1, 1)
            or layer.data_format != "channels_last"
            or padding.data_format != "channels_last"
        ):
            continue
        height, width = padding._inbound_nodes[0].input_tensors[0].shape[1:3]
        if height is None or width is None:
            continue
        same = (
            _same_padding(height, layer.kernel_size[0], layer.strides[0]),
            _same_padding(width, layer.kernel_size[1], layer.strides[1]),
        )
        if tuple(map(tuple, padding.padding)) == same:
            convolutions[layer.name] = padding.name
    return convolutions


def zero_padding_fold(model: keras.Model) -> Fold:
    """Each ``ZeroPadding2D`` equal to "same" padding becomes a pass-through and its
    convolution takes ``padding="same"``."""
    convolutions = _foldable_paddings(model)
    return Fold(
        removed=set(convolutions.values()),
        config={name: {"padding": "same"} for name in convolutions},
    )


@keras.saving.register_keras_serializable(package="arnn_tf")
class ScaledNormalization(keras.layers.Normalization):
    """``Normalization`` with the fixed affine maps just before and after it merged in.

    Computes ``((x * input_scale + input_offset - mean) / std) * output_scale + output_offset``
    as one multiply-add. It keeps the ``Normalization`` weights (mean, variance, count), so a
    folded network has the same weights, in the same order, as the original.
    """

    def __init__(
        self,
        input_scale: Any = 1.0,
        input_offset: Any = 0.0,
        output_scale: Any = 1.0,
        output_offset: Any = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.invert:
            raise ValueError("ScaledNormalization does not support invert=True")
        self.affine = {
            name: np.asarray(value, dtype="float32").tolist()
            for name, value in (
                ("input_scale", input_scale),
                ("input_offset", input_offset),
                ("output_scale", output_scale),
                ("output_offset", output_offset),
            )
        }

    def call(self, inputs: Any) -> Any:
        if self.mean is None:
            raise ValueError("You must call `.build(input_shape)` on the layer before using it.")
        dtype = self.compute_dtype
        affine = {
            name: keras.ops.convert_to_tensor(value, dtype=dtype)
            for name, value in self.affine.items()
        }
        std = keras.ops.maximum(
            keras.ops.sqrt(self.convert_weight(self.variance)), keras.config.epsilon()
        )
        scale = affine["input_scale"] * affine["output_scale"] / std
        offset = (
            (affine["input_offset"] - self.convert_weight(self.mean)) * affine["output_scale"] / std
        )
        return keras.ops.convert_to_tensor(inputs, dtype=dtype) * scale + (
            offset + affine["output_offset"]
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.affine}


def _entrance_chain(model: keras.Model) -> list[keras.layers.Layer]:
    """The Rescaling/Normalization layers that, one after another, alone consume the input."""
    consumers = _consumers(model)
    chain: list[keras.layers.Layer] = []
    users = (
        consumers.get(model.inputs[0]._keras_history.operation.name, [])
        if len(model.inputs) == 1
        else []
    )
    while len(users) == 1 and (
        isinstance(users[0], keras.layers.Rescaling)
        or (
            type(users[0]) is keras.layers.Normalization
            and not users[0].invert
            and users[0].axis in ((-1,), (3,))
        )
    ):
        chain.append(users[0])
        users = consumers.get(users[0].name, [])
    return chain


def _compose(
    scale: np.ndarray, offset: np.ndarray, layer: keras.layers.Rescaling
) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) of ``layer(x * scale + offset)`` as one affine map of x."""
    layer_scale = np.asarray(layer.scale, dtype="float64")
    return scale * layer_scale, offset * layer_scale + np.asarray(layer.offset, dtype="float64")


def input_scaling_fold(model: keras.Model, scale: float = 1.0, offset: float = 0.0) -> Fold | None:
    """Makes ``model`` take ``x`` and compute ``model(x * scale + offset)``.

    The affine layers at the entrance (Rescaling, then one Normalization, then Rescaling)
    and the given ``scale``/``offset`` become one `ScaledNormalization` in the Normalization's
    place; the Rescalings become pass-throughs. Returns None when the input does not go
    straight into such a chain with a Normalization in it.
    """
    chain = _entrance_chain(model)
    norms = [i for i, layer in enumerate(chain) if isinstance(layer, keras.layers.Normalization)]
    if len(norms) != 1:
        return None
    before, after = chain[: norms[0]], chain[norms[0] + 1 :]
    input_scale, input_offset = np.float64(scale), np.float64(offset)
    for layer in before:
        input_scale, input_offset = _compose(input_scale, input_offset, layer)
    output_scale, output_offset = np.float64(1.0), np.float64(0.0)
    for layer in after:
        output_scale, output_offset = _compose(output_scale, output_offset, layer)

    def scaled(config: dict[str, Any]) -> keras.layers.Layer:
        return ScaledNormalization(input_scale, input_offset, output_scale, output_offset, **config)

    return Fold(
        removed={layer.name for layer in before + after}, replacement={chain[norms[0]].name: scaled}
    )
