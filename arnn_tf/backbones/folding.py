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
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


@keras.saving.register_keras_serializable(package="arnn_tf")
class FoldedLayer(keras.layers.Layer):
    """Stands where a layer was folded into a neighbouring convolution: passes inputs on."""

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        return inputs


def _producer(layer: keras.layers.Layer) -> Any:
    """The layer whose output is ``layer``'s only input, or None."""
    if len(layer._inbound_nodes) != 1:
        return None
    inputs = layer._inbound_nodes[0].input_tensors
    return inputs[0]._keras_history.operation if len(inputs) == 1 else None


def _consumers(model: keras.Model) -> dict[str, list[Any]]:
    """Layer name -> the layers that use its output, once per use (None for a model output)."""
    consumers: dict[str, list[Any]] = {}
    uses = [(t, op) for op in model.operations for node in op._inbound_nodes for t in node.input_tensors]
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
            if isinstance(conv, _CONVOLUTIONS) and consumers.get(conv.name) == 1 and conv.activation in (
                    keras.activations.linear, None):
                pairs[conv.name] = layer
    return pairs


def _folded_weights(conv: keras.layers.Layer, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
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


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """A copy of a functional ``model`` with every convolution + batch norm pair fused.

    Layers keep their names (a folded batch norm becomes a pass-through `FoldedLayer`), so the copy
    reads like the original in summaries. Models without such pairs come back unchanged.
    """
    pairs = _foldable_pairs(model)
    if not pairs:
        return model
    folded_bns = {bn.name for bn in pairs.values()}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
            return layer.__class__.from_config(config)
        if layer.name in folded_bns:
            return FoldedLayer(name=layer.name)
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    originals = {layer.name: layer for layer in model.layers}
    _copy_weights(folded, originals, skip=set(pairs))
    for name, bn in pairs.items():
        folded.get_layer(name).set_weights(_folded_weights(originals[name], bn))
    return folded


def _copy_weights(folded: keras.Model, originals: dict[str, keras.layers.Layer], skip: set[str]) -> None:
    """Gives each layer of ``folded`` not in ``skip`` the weights of its namesake in ``originals``."""
    for layer in folded.layers:
        if layer.weights and layer.name not in skip:
            layer.set_weights(originals[layer.name].get_weights())
            if isinstance(layer, keras.layers.Normalization):
                layer.finalize_state()  # it reads its statistics from tensors refreshed here


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
        if (not isinstance(padding, keras.layers.ZeroPadding2D) or consumers.get(padding.name) != 1
                or layer.padding != "valid" or tuple(layer.dilation_rate) != (1, 1)
                or layer.data_format != "channels_last" or padding.data_format != "channels_last"):
            continue
        height, width = padding._inbound_nodes[0].input_tensors[0].shape[1:3]
        if height is None or width is None:
            continue
        same = (_same_padding(height, layer.kernel_size[0], layer.strides[0]),
                _same_padding(width, layer.kernel_size[1], layer.strides[1]))
        if tuple(map(tuple, padding.padding)) == same:
            convolutions[layer.name] = padding.name
    return convolutions


def fold_zero_padding(model: keras.Model) -> keras.Model:
    """A copy of a functional ``model`` whose zero paddings equal to "same" padding are folded.

    Each folded ``ZeroPadding2D`` becomes a pass-through `FoldedLayer` and its convolution
    takes ``padding="same"``; weights are copied from ``model``. Models without
    such pairs come back unchanged.
    """
    convolutions = _foldable_paddings(model)
    if not convolutions:
        return model
    paddings = set(convolutions.values())

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.name in paddings:
            return FoldedLayer(name=layer.name)
        if layer.name in convolutions:
            config["padding"] = "same"
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    _copy_weights(folded, {layer.name: layer for layer in model.layers}, skip=set())
    return folded


@keras.saving.register_keras_serializable(package="arnn_tf")
class ScaledNormalization(keras.layers.Normalization):
    """``Normalization`` with the fixed affine maps just before and after it merged in.

    Computes ``((x * input_scale + input_offset - mean) / std) * output_scale + output_offset``
    as one multiply-add. It keeps the ``Normalization`` weights (mean, variance, count), so a
    folded network has the same weights, in the same order, as the original.
    """

    def __init__(self, input_scale: Any = 1.0, input_offset: Any = 0.0, output_scale: Any = 1.0,
                 output_offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.invert:
            raise ValueError("ScaledNormalization does not support invert=True")
        self.affine = {name: np.asarray(value, dtype="float32").tolist() for name, value in (
            ("input_scale", input_scale), ("input_offset", input_offset),
            ("output_scale", output_scale), ("output_offset", output_offset))}

    def call(self, inputs: Any) -> Any:
        if self.mean is None:
            raise ValueError("You must call `.build(input_shape)` on the layer before using it.")
        dtype = self.compute_dtype
        affine = {name: keras.ops.convert_to_tensor(value, dtype=dtype) for name, value in self.affine.items()}
        std = keras.ops.maximum(keras.ops.sqrt(self.convert_weight(self.variance)), keras.config.epsilon())
        scale = affine["input_scale"] * affine["output_scale"] / std
        offset = (affine["input_offset"] - self.convert_weight(self.mean)) * affine["output_scale"] / std
        return keras.ops.convert_to_tensor(inputs, dtype=dtype) * scale + (offset + affine["output_offset"])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.affine}


def _entrance_chain(model: keras.Model) -> list[keras.layers.Layer]:
    """The Rescaling/Normalization layers that, one after another, alone consume the model's input."""
    consumers = _consumers(model)
    chain: list[keras.layers.Layer] = []
    users = consumers.get(model.inputs[0]._keras_history.operation.name, []) if len(model.inputs) == 1 else []
    while len(users) == 1 and (isinstance(users[0], keras.layers.Rescaling) or (
            type(users[0]) is keras.layers.Normalization and not users[0].invert
            and users[0].axis in ((-1,), (3,)))):
        chain.append(users[0])
        users = consumers.get(users[0].name, [])
    return chain


def _compose(scale: np.ndarray, offset: np.ndarray, layer: keras.layers.Rescaling) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) of ``layer(x * scale + offset)`` as one affine map of x."""
    layer_scale = np.asarray(layer.scale, dtype="float64")
    return scale * layer_scale, offset * layer_scale + np.asarray(layer.offset, dtype="float64")


def fold_input_scaling(model: keras.Model, scale: float = 1.0, offset: float = 0.0) -> keras.Model | None:
    """A copy of ``model`` that takes ``x`` and computes ``model(x * scale + offset)``.

    The affine layers at the entrance (Rescaling, then one Normalization, then Rescaling)
    and the given ``scale``/``offset`` become one `ScaledNormalization` in the Normalization's
    place; the Rescalings become pass-through `FoldedLayer`s. Returns None when the input does
    not go straight into such a chain with a Normalization in it.
    """
    chain = _entrance_chain(model)
    norms = [i for i, layer in enumerate(chain) if isinstance(layer, keras.layers.Normalization)]
    if len(norms) != 1:
        return None
    before, after = chain[:norms[0]], chain[norms[0] + 1:]
    input_scale, input_offset = np.float64(scale), np.float64(offset)
    for layer in before:
        input_scale, input_offset = _compose(input_scale, input_offset, layer)
    output_scale, output_offset = np.float64(1.0), np.float64(0.0)
    for layer in after:
        output_scale, output_offset = _compose(output_scale, output_offset, layer)
    norm = chain[norms[0]]
    rescalings = {layer.name for layer in before + after}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in rescalings:
            return FoldedLayer(name=layer.name)
        if layer is norm:
            return ScaledNormalization(input_scale, input_offset, output_scale, output_offset,
                                       **layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    folded = keras.models.clone_model(model, clone_function=clone)
    _copy_weights(folded, {layer.name: layer for layer in model.layers}, skip=set())
    return folded
