"""ReprogrammedModel on the tiny backbone: trainability, gradients, fit, save/load."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from arnn_tf.backbones import build_backbone, get_backbone_spec, weights_fingerprint
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.placement import ConcealedPlacement
from arnn_tf.models.reprogrammed import ReprogrammedModel


def tiny_model(**options):
    backbone = build_backbone("tiny_cnn", None, seed=3)
    return build_reprogrammed_model(backbone, (12, 12, 1), 4, l2=1e-4, **options)


def batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 12, 12, 1)).astype("uint8"), rng.integers(0, 4, n).astype("int32")


def test_only_the_program_weight_is_trainable():
    model = tiny_model()
    assert [w.path for w in model.trainable_weights] == ["frame_program/W"]
    assert not model.backbone.trainable and len(model.backbone.weights) > 0


def test_gradients_of_the_training_loss_reach_w_outside_the_task_window():
    model = tiny_model()
    images, labels = batch()
    model.program.weight.assign(np.random.default_rng(0).normal(0, 0.5, model.program.weight.shape))
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, model(images)))
    (grad,) = tape.gradient(loss, [w.value for w in model.trainable_weights])
    grad = grad.numpy()
    program_pixels = model.program.mask.astype(bool)
    assert np.all(np.abs(grad[program_pixels]) > 0)
    assert np.all(grad[~program_pixels] == 0)  # the task window belongs to the task image


def test_fit_changes_only_w_and_batch_norm_stays_in_inference_mode():
    model = tiny_model()
    before = {w.path: keras.ops.convert_to_numpy(w.value).copy() for w in model.weights}
    model.compile()
    images, labels = batch(32)
    model.fit(images, labels, epochs=2, batch_size=8, verbose=0)
    for weight in model.weights:
        changed = not np.array_equal(before[weight.path], keras.ops.convert_to_numpy(weight.value))
        assert changed == (weight is model.program.weight), weight.path


def test_the_backbone_runs_in_inference_mode_when_the_model_trains():
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Dropout(0.5)(keras.layers.Conv2D(8, 3)(inputs)))
    backbone = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Dropout(0.5)(features)))
    model = build_reprogrammed_model(backbone, (12, 12, 1), 4)
    model.program.weight.assign(np.random.default_rng(0).normal(0, 1, model.program.weight.shape))
    images = batch()[0]
    inference = keras.ops.convert_to_numpy(model(images, training=False))
    for _ in range(3):  # dropout at rate 0.5 would change these every call
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images, training=True)), inference)


def test_loss_includes_lambda_times_w_norm():
    model = tiny_model()
    model.program.weight.assign(np.ones(model.program.weight.shape, "float32"))
    model(batch()[0])
    expected = 1e-4 * np.prod(model.program.weight.shape)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_model_learns_a_separable_toy_task():
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=3), (12, 12, 1), 2, l2=1e-4)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 256).astype("int32")
    images = np.repeat((labels * 255).astype("uint8")[:, None, None, None], 12, axis=1).repeat(12, axis=2)
    before = model.evaluate(images, labels, verbose=0, return_dict=True)
    model.fit(images, labels, epochs=20, batch_size=32, verbose=0)
    after = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert after["loss"] < 0.7 * before["loss"]
    assert after["accuracy"] == 1.0


def test_keras_save_and_load_give_equal_outputs(tmp_path):
    model = tiny_model(label_map="random:2", border_width=4, linf_bound=0.5)
    model.program.weight.assign(np.random.default_rng(1).normal(size=model.program.weight.shape))
    model.compile()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    images, _ = batch()
    assert isinstance(loaded, ReprogrammedModel)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    assert loaded.label_map.groups == model.label_map.groups


def test_config_round_trip():
    model = tiny_model()
    clone = ReprogrammedModel.from_config(model.get_config())
    assert clone.get_config()["program"] == model.get_config()["program"]
    assert clone.label_map.groups == model.label_map.groups


def test_program_for_other_frame_size_is_refused():
    from arnn_tf.layers.label_mapping import LabelMapping
    from arnn_tf.modalities.image.model import image_placement_and_program
    placement, program = image_placement_and_program(64, (8, 8, 1))
    with pytest.raises(ValueError, match="64x64 inputs"):
        ReprogrammedModel(program, build_backbone("tiny_cnn", None), LabelMapping([[0]]), placement)


def test_unknown_backbone_lists_known_names():
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        get_backbone_spec("alexnet")


def test_untrained_backbone_is_reproducible_from_its_seed():
    a = weights_fingerprint(build_backbone("tiny_cnn", "none", seed=5))
    assert a == weights_fingerprint(build_backbone("tiny_cnn", None, seed=5))
    assert a != weights_fingerprint(build_backbone("tiny_cnn", None, seed=6))


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        build_backbone("tiny_cnn", str(tmp_path / "nope.weights.h5"))


def host_photo(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3)).astype("uint8")


def test_concealed_program_trains_only_w():
    model = tiny_model(host_image=host_photo(), conceal_scale=0.1)
    assert isinstance(model.encoder, ConcealedPlacement) and model.encoder.conceal_scale == 0.1
    assert model.program.linf_bound == 0.1
    assert [w.path for w in model.trainable_weights] == ["frame_program/W"]
    images, labels = batch()
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, model(images)))
    (grad,) = tape.gradient(loss, [w.value for w in model.trainable_weights])
    assert np.count_nonzero(grad.numpy()) > 0.9 * grad.numpy().size  # the program covers the whole frame
    host = keras.ops.convert_to_numpy(model.encoder.host_image.value).copy()
    before = {w.path: keras.ops.convert_to_numpy(w.value).copy() for w in model.weights}
    model.compile()
    model.fit(images, labels, epochs=2, batch_size=8, verbose=0)
    for weight in model.weights:
        changed = not np.array_equal(before[weight.path], keras.ops.convert_to_numpy(weight.value))
        assert changed == (weight is model.program.weight), weight.path
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.encoder.host_image.value), host)


def test_concealed_model_keras_save_and_load_give_equal_outputs(tmp_path):
    model = tiny_model(host_image=host_photo(), conceal_scale=0.2, seed=4)
    model.program.weight.assign(np.random.default_rng(1).normal(size=model.program.weight.shape))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    images, _ = batch()
    assert isinstance(loaded.encoder, ConcealedPlacement) and loaded.encoder.permutation_seed == 4
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.encoder.host_image.value), host_photo())
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_concealed_program_takes_no_placement_options():
    with pytest.raises(ValueError, match="no placement options"):
        tiny_model(host_image=host_photo(), border_width=4)


def flip_average_pair():
    """Two models on one random W: one answering single-view, one with ``flip_average``."""
    plain, averaging = tiny_model(seed=1), tiny_model(seed=1, flip_average=True)
    weight = np.random.default_rng(2).normal(0, 1, plain.program.weight.shape)
    plain.program.weight.assign(weight)
    averaging.program.weight.assign(weight)
    return plain, averaging


def test_flip_average_answers_with_the_mean_over_each_image_and_its_mirror():
    plain, averaging = flip_average_pair()
    images, _ = batch()
    single = plain.predict(images, verbose=0)
    mirror = plain.predict(images[:, :, ::-1], verbose=0)
    assert not np.allclose(single, mirror, atol=1e-3)  # the mirror images do get other answers
    np.testing.assert_allclose(averaging.predict(images, verbose=0), (single + mirror) / 2, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(averaging(images)), (single + mirror) / 2, atol=1e-6)


def test_flip_average_leaves_training_steps_single_view():
    plain, averaging = flip_average_pair()
    images, labels = batch()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(averaging(images, training=True)),
                               plain.predict(images, verbose=0), atol=1e-6)
    for model in (plain, averaging):
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(images, labels, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(averaging.program.weight.value),
                               keras.ops.convert_to_numpy(plain.program.weight.value), atol=1e-6)


def test_flip_average_survives_config_and_keras_save(tmp_path):
    _, averaging = flip_average_pair()
    assert ReprogrammedModel.from_config(averaging.get_config()).flip_average
    assert not ReprogrammedModel.from_config(tiny_model().get_config()).flip_average
    averaging.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    images, _ = batch()
    assert loaded.flip_average
    np.testing.assert_allclose(loaded.predict(images, verbose=0), averaging.predict(images, verbose=0), atol=1e-6)


def test_an_image_programs_placement_and_frame_program_clip_only_where_the_range_can_be_left():
    from arnn_tf.modalities.image.model import image_placement_and_program

    images = np.random.default_rng(3).integers(0, 256, (4, 12, 12, 1)).astype("uint8")
    weight = np.random.default_rng(4).normal(0, 3, (48, 48, 3)).astype("float32")
    for options, clips in (({}, False), ({"border_width": 6}, False),
                           ({"image_size": (48, 48), "full_program": True}, True),
                           ({"linf_bound": 2.0}, True), ({"linf_bound": 0.5}, False)):
        placement, program = image_placement_and_program(48, (12, 12, 1), **options)
        assert program.clip is clips
        program.weight.assign(weight)
        canvas = keras.ops.convert_to_numpy(placement(images))
        clipped = np.clip(canvas + keras.ops.convert_to_numpy(program.program()), -1.0, 1.0)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(program(canvas)), clipped, atol=1e-6)


def test_flip_average_needs_an_encoder_that_mirrors_its_inputs():
    from arnn_tf.layers.frame_program import FrameProgram
    from arnn_tf.layers.label_mapping import LabelMapping
    from arnn_tf.modalities.text import TokenPatchEncoder

    encoder = TokenPatchEncoder(20, frame_size=48, patch_size=8)
    program = FrameProgram(48, encoder.program_mask)
    with pytest.raises(ValueError, match="encoder TokenPatchEncoder has none"):
        ReprogrammedModel(program, build_backbone("tiny_cnn", None), LabelMapping([[0], [1]]), encoder,
                          flip_average=True)
