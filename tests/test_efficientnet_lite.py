"""Tests for the offline EfficientNet-Lite0 backbone converted from the PyTorch weights.

The ImageNet model is built once per module, against a temporary KERAS_HOME so the user's
cache is never touched; that first build converts the .pth and writes the cache.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import keras
import numpy as np
import pytest

from arnn_tf.backbones import efficientnet_lite as el
from arnn_tf.backbones.imagenet_classes import imagenet_class_names
from arnn_tf.backbones.torch_pickle import load_torch_state_dict

# Independent statement of the mapping: torch module -> Keras layer, and torch -> Keras layout.
TOP = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv", "_bn1": "top_bn",
       "_fc": "predictions"}
IN_BLOCK = {"_expand_conv": "expand_conv", "_bn0": "expand_bn", "_depthwise_conv": "dwconv",
            "_bn1": "bn", "_project_conv": "project_conv", "_bn2": "project_bn"}
REPEATS = [1, 2, 2, 3, 3, 4, 1]  # EfficientNet-B0 / Lite0 blocks per stage
LITE1_REPEATS = [1, 3, 3, 4, 4, 5, 1]  # depth 1.1, the first and last stages kept


def blocks(repeats: list[int]) -> list[str]:
    return [f"block{stage + 1}{'abcde'[j]}_" for stage, n in enumerate(repeats) for j in range(n)]


def keras_weights_for(module: str, params: dict[str, np.ndarray],
                      repeats: list[int] = REPEATS) -> tuple[str, list[np.ndarray]]:
    parts = module.split(".")
    layer = TOP[module] if len(parts) == 1 else blocks(repeats)[int(parts[1])] + IN_BLOCK[parts[2]]
    if "running_mean" in params:
        return layer, [params[k] for k in ("weight", "bias", "running_mean", "running_var")]
    if "bias" in params:
        return layer, [params["weight"].T, params["bias"]]
    kernel = params["weight"]
    return layer, [kernel.transpose(2, 3, 0, 1) if "depthwise" in module else kernel.transpose(2, 3, 1, 0)]


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("keras_home")
        mp.setenv("KERAS_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def model(keras_home: Path) -> keras.Model:
    assert not el.cache_path(el.LITE0).exists()
    return el.efficientnet_lite0()


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return load_torch_state_dict(el.torch_weights_path(el.LITE0))


def assert_holds_state_dict(model: keras.Model, fresh: keras.Model,
                            state_dict: dict[str, np.ndarray], repeats: list[int]) -> set[str]:
    """Every weight layer of ``model`` holds its tensor (and not ``fresh``'s initial value)."""
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if param != "num_batches_tracked":
            modules.setdefault(module, {})[param] = value
    checked = set()
    for module, params in modules.items():
        name, expected = keras_weights_for(module, params, repeats)
        got = model.get_layer(name).get_weights()
        initial = fresh.get_layer(name).get_weights()
        assert len(got) == len(expected), name
        for g, e, i in zip(got, expected, initial):
            np.testing.assert_array_equal(g, e, err_msg=name)
            assert not np.array_equal(g, i), f"{name} still at its initial value"
        checked.add(name)
    weight_layers = {layer.name for layer in model.layers
                     if layer.weights and not isinstance(layer, keras.layers.Normalization)}
    assert weight_layers == checked
    return checked


def test_every_weight_layer_holds_its_converted_tensor(model: keras.Model,
                                                       state_dict: dict[str, np.ndarray]) -> None:
    fresh = el.efficientnet_lite0(weights=None)
    checked = assert_holds_state_dict(model, fresh, state_dict, REPEATS)
    assert len(checked) == 1 + 1 + 16 * 4 + 15 * 2 + 2 + 1  # stem, blocks, head, classifier


def test_architecture_is_lite0(model: keras.Model) -> None:
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)
    assert not any("se_" in layer.name for layer in model.layers)
    assert model.get_layer("stem_activation").get_config()["activation"] == "relu6"
    assert model.get_layer("predictions").get_config()["activation"] == "linear"  # logits
    assert all(layer.epsilon == 1e-3 for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))
    assert model.count_params() - 42_016 - 7 == 4_652_008  # minus BN statistics, Normalization


def test_model_normalises_pixels_to_lite_inputs(model: keras.Model) -> None:
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    front = keras.Model(model.input, norm.output)
    pixels = np.zeros((1, 224, 224, 3), "float32")
    pixels[0, 0, 0] = [0.0, 127.0, 255.0]
    out = keras.ops.convert_to_numpy(front(pixels))[0, 0, 0]
    np.testing.assert_allclose(out, [-127 / 128, 0.0, 1.0], atol=1e-5)


def _photo(image: np.ndarray, size: int = 224) -> np.ndarray:
    resized = keras.ops.image.resize(image[None].astype("float32"), (size, size), antialias=True)
    return keras.ops.convert_to_numpy(resized)


def assert_classifies_sample_photos(model: keras.Model, size: int) -> None:
    data = pytest.importorskip("skimage.data")
    photos = np.concatenate([_photo(data.chelsea(), size), _photo(data.coffee(), size)])
    cat, coffee = keras.ops.convert_to_numpy(model(photos)).argmax(axis=1)
    names = imagenet_class_names()
    assert 281 <= cat <= 285, names[cat]
    assert coffee == 967, names[coffee]


def test_classifies_sample_photos(model: keras.Model) -> None:
    assert_classifies_sample_photos(model, 224)


def test_lite1_converts_every_tensor_and_classifies_photos(keras_home: Path) -> None:
    state_dict = load_torch_state_dict(el.torch_weights_path(el.LITE1))
    model = el.efficientnet_lite1()
    assert model.input_shape == (None, 240, 240, 3) and el.cache_path(el.LITE1).is_file()
    checked = assert_holds_state_dict(model, el.efficientnet_lite1(weights=None), state_dict,
                                      LITE1_REPEATS)
    assert len(checked) == 1 + 1 + 21 * 4 + 20 * 2 + 2 + 1  # stem, blocks, head, classifier
    assert_classifies_sample_photos(model, 240)


def test_missing_weights_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = dataclasses.replace(el.LITE1, package="arnn_tf_no_such_weights_package")
    with pytest.raises(ValueError, match=r"arnn-tf-no-such-weights-package.*arnn-tf\[lite1\]"):
        el.torch_weights_path(missing)


def test_second_load_reads_the_cache_not_the_pth(model: keras.Model, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = el.cache_path(el.LITE0)
    assert cache.is_file() and cache.name.startswith("efficientnet_lite0_" + el.LITE0.sha256[:16])
    assert not list(cache.parent.glob(".tmp_*")), "temporary file left behind"

    def no_pth(path: object) -> None:
        raise AssertionError(f"read {path} although the cache exists")

    monkeypatch.setattr(el, "load_torch_state_dict", no_pth)
    again = el.efficientnet_lite0()
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_weights_file_path_and_random_init(model: keras.Model) -> None:
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    from_file = el.efficientnet_lite0(weights=str(el.cache_path(el.LITE0)))
    np.testing.assert_allclose(from_file(x), model(x), rtol=1e-5, atol=1e-5)
    untrained = el.efficientnet_lite0(weights=None)
    assert not np.allclose(untrained.get_layer("stem_conv").get_weights()[0],
                           model.get_layer("stem_conv").get_weights()[0])


@pytest.mark.parametrize("change", ["extra key", "missing key"])
def test_conversion_fails_loudly_on_mismatch(change: str, state_dict: dict[str, np.ndarray],
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # empty cache: forces a conversion
    broken = dict(state_dict)
    if change == "extra key":
        broken["_blocks.0._se_reduce.weight"] = np.zeros((8, 32, 1, 1), np.float32)
    else:
        for param in ("weight", "bias", "running_mean", "running_var"):
            del broken[f"_blocks.3._bn1.{param}"]
    monkeypatch.setattr(el, "load_torch_state_dict", lambda path: broken)
    with pytest.raises(ValueError, match="se_reduce" if change == "extra key" else "block3a_bn"):
        el.efficientnet_lite0()
    assert not el.cache_path(el.LITE0).exists()


def test_unwritable_cache_only_warns(state_dict: dict[str, np.ndarray], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv("KERAS_HOME", str(not_a_dir))
    with pytest.warns(UserWarning, match="could not cache"):
        model = el.efficientnet_lite0()
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[1], state_dict["_fc.bias"])
