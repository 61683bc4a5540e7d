"""The image encoders with their frame program, and the label maps: placement, bounds, masks,
concealment, aggregation, configs."""

import keras
import numpy as np
import pytest

from arnn_tf.label_maps.specs import first_k, parse_label_map, random_choice
from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.layers.label_mapping import LabelMapping
from arnn_tf.modalities.image.model import concealment_and_program, image_placement_and_program
from arnn_tf.modalities.image.placement import ConcealedPlacement, ImagePlacement


def random_images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype("uint8")


class Programmed:
    """An image encoder and its frame program called as one, ``X_adv = program(encoder(x))``."""

    def __init__(self, encoder, program):
        self.encoder, self.layer = encoder, program
        self.weight, self.mask = program.weight, program.mask
        self.padding = getattr(encoder, "padding", None)

    def __call__(self, images):
        return self.layer(self.encoder(images))

    def program(self):
        return self.layer.program()


def placed(frame_size, task_image_shape, **options):
    return Programmed(*image_placement_and_program(frame_size, task_image_shape, **options))


def concealed(frame_size, task_image_shape, host_image=None, scale=0.1, permutation_seed=0, l2=0.0):
    return Programmed(*concealment_and_program(frame_size, task_image_shape, host_image, scale,
                                               permutation_seed, l2))


def with_random_program(layer, seed=1, scale=3.0):
    layer.weight.assign(np.random.default_rng(seed).normal(0, scale, layer.weight.shape).astype("float32"))
    return layer


@pytest.mark.parametrize("task_shape", [(12, 12, 3), (11, 7, 1), (32, 32, 3)])
def test_task_window_holds_the_task_image_untouched(task_shape):
    layer = with_random_program(placed(32, task_shape))
    images = random_images((4, *task_shape))
    x_adv = keras.ops.convert_to_numpy(layer(images))
    (top, _), (left, _) = layer.padding
    h, w, _ = task_shape
    window = x_adv[:, top : top + h, left : left + w]
    expected = images.astype("float32") / 127.5 - 1.0
    np.testing.assert_allclose(window, np.broadcast_to(expected, window.shape), atol=1e-6)
    assert top == (32 - h) // 2 and left == (32 - w) // 2


def test_outside_the_window_the_input_is_the_program():
    layer = with_random_program(placed(32, (8, 8, 3)))
    x_adv = keras.ops.convert_to_numpy(layer(random_images((2, 8, 8, 3))))
    program = keras.ops.convert_to_numpy(layer.program())
    outside = layer.mask.astype(bool)
    np.testing.assert_allclose(x_adv[0][outside], program[outside], atol=1e-6)
    assert np.abs(program[outside]).max() > 0.9  # tanh of large weights reaches the bounds
    assert np.all(program[~outside] == 0)


def test_program_and_output_stay_in_range():
    layer = with_random_program(placed(32, (8, 8, 3)), scale=50.0)
    x_adv = keras.ops.convert_to_numpy(layer(random_images((3, 8, 8, 3))))
    assert x_adv.min() >= -1.0 and x_adv.max() <= 1.0
    assert np.abs(keras.ops.convert_to_numpy(layer.program())).max() <= 1.0


@pytest.mark.parametrize("options", [dict(), dict(image_size=(20, 20)), dict(linf_bound=3.0),
                                     dict(image_size=(32, 32), full_program=True)])
def test_output_stays_in_range_with_or_without_the_clip(options):
    layer = with_random_program(placed(32, (8, 8, 3), **options), scale=50.0)
    assert layer.layer.clip == ("linf_bound" in options or "full_program" in options)
    x_adv = keras.ops.convert_to_numpy(layer(random_images((3, 8, 8, 3))))
    assert x_adv.min() >= -1.0 and x_adv.max() <= 1.0
    assert x_adv.min() < -0.99 and x_adv.max() > 0.99  # the program reaches both ends of the range


def test_linf_bound_limits_the_program():
    layer = with_random_program(placed(32, (8, 8, 3), linf_bound=0.1), scale=50.0)
    program = keras.ops.convert_to_numpy(layer.program())
    assert np.abs(program).max() <= 0.1 + 1e-6
    assert np.abs(program).max() > 0.099


def test_border_width_confines_the_program_to_a_band():
    layer = with_random_program(placed(32, (8, 8, 1), border_width=4))
    program = keras.ops.convert_to_numpy(layer.program())
    assert np.all(program[4:28, 4:28] == 0)
    assert np.all(program[:4] != 0) and np.all(program[:, -4:] != 0)
    assert layer.mask.sum() == (32 * 32 - 24 * 24) * 3


def test_image_size_scales_the_task_image_before_placing_it():
    layer = placed(32, (8, 8, 1), image_size=(16, 16))
    images = np.full((1, 8, 8, 1), 255, dtype="uint8")
    x_adv = keras.ops.convert_to_numpy(layer(images))
    assert layer.padding == ((8, 8), (8, 8))
    np.testing.assert_allclose(x_adv[0, 8:24, 8:24], 1.0, atol=1e-6)
    assert x_adv.shape == (1, 32, 32, 3)
    assert layer.mask[8:24, 8:24].sum() == 0 and layer.mask[:8].all()


def test_grayscale_is_repeated_to_three_channels():
    layer = placed(16, (4, 4, 1))
    x_adv = keras.ops.convert_to_numpy(layer(random_images((1, 4, 4, 1))))
    np.testing.assert_array_equal(x_adv[..., 0], x_adv[..., 1])
    np.testing.assert_array_equal(x_adv[..., 0], x_adv[..., 2])


@pytest.mark.parametrize("kwargs, message", [
    (dict(task_image_shape=(40, 40, 3)), "does not fit"),
    (dict(task_image_shape=(8, 8, 3), image_size=(33, 33)), "does not fit"),
    (dict(task_image_shape=(8, 8, 2)), "1 or 3 channels"),
    (dict(task_image_shape=(8, 8, 3), border_width=0), "border_width"),
    (dict(task_image_shape=(8, 8, 3), linf_bound=-1.0), "linf_bound"),
])
def test_impossible_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        placed(32, **kwargs)


def test_l2_regulariser_is_lambda_times_squared_frobenius_norm():
    layer = with_random_program(placed(16, (4, 4, 3), l2=1e-3))
    weight = keras.ops.convert_to_numpy(layer.weight.value)
    loss = float(keras.ops.convert_to_numpy(layer.weight.regularizer(layer.weight.value)))
    assert loss == pytest.approx(1e-3 * np.sum(weight**2), rel=1e-5)


def test_encoder_and_program_configs_round_trip():
    layer = placed(32, (8, 8, 1), image_size=(12, 12), border_width=5, linf_bound=0.3, l2=2e-6,
                   full_program=True)
    placement = ImagePlacement.from_config(layer.encoder.get_config())
    program = FrameProgram.from_config(layer.layer.get_config())
    assert placement.get_config() == layer.encoder.get_config()
    assert program.get_config() == layer.layer.get_config()
    np.testing.assert_array_equal(placement.program_mask, layer.mask)


def test_label_mapping_picks_the_mapped_outputs():
    logits = np.random.default_rng(0).normal(size=(5, 1000)).astype("float32")
    mapping = LabelMapping([[7], [3], [500]])
    probs = keras.ops.convert_to_numpy(mapping(logits))
    picked = logits[:, [7, 3, 500]]
    expected = np.exp(picked) / np.exp(picked).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5)


def test_label_mapping_adds_probabilities_not_logits():
    logits = np.zeros((1, 1000), dtype="float32")
    logits[0, [1, 2]] = np.log([3.0, 5.0])  # exp: 3 and 5
    logits[0, 9] = np.log(2.0)  # exp: 2
    probs = keras.ops.convert_to_numpy(LabelMapping([[1, 2], [9]])(logits))
    np.testing.assert_allclose(probs, [[8 / 10, 2 / 10]], rtol=1e-5)


def test_label_mapping_is_stable_for_large_logits():
    logits = np.full((1, 1000), 1e4, dtype="float32")
    logits[0, 0] = 2e4
    probs = keras.ops.convert_to_numpy(LabelMapping([[0], [1]])(logits))
    assert np.all(np.isfinite(probs)) and probs[0, 0] == pytest.approx(1.0)


def test_label_mapping_restricted_to_some_classes_renormalises_over_them():
    logits = np.random.default_rng(2).normal(size=(4, 1000)).astype("float32")
    mapping = LabelMapping([[1, 2], [9], [5], [7, 8]])
    full = keras.ops.convert_to_numpy(mapping(logits))
    restricted = keras.ops.convert_to_numpy(mapping.probabilities(logits, 1, 2))
    np.testing.assert_allclose(restricted, full[:, 1:3] / full[:, 1:3].sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mapping.probabilities(logits)), full, rtol=1e-6)
    dominated = np.zeros((1, 1000), "float32")
    dominated[0, 1] = 500.0  # class 0 takes all the mass: classes 2 and 3 get exactly 0 in the full output
    dominated[0, 7] = 1.0
    assert keras.ops.convert_to_numpy(mapping(dominated))[0, 2:].sum() == 0.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mapping.probabilities(dominated, 2)),
                               [[1 / (2 + np.e), (1 + np.e) / (2 + np.e)]], rtol=1e-5)  # exp: 1 | e + 1
    with pytest.raises(ValueError, match="not within"):
        mapping.probabilities(logits, 3, 2)


def test_label_mapping_refuses_bad_groups():
    with pytest.raises(ValueError, match="only one task class"):
        LabelMapping([[1], [1]])
    with pytest.raises(ValueError, match="0..999"):
        LabelMapping([[1000]])
    with pytest.raises(ValueError, match="at least one"):
        LabelMapping([[1], []])


def test_label_mapping_config_round_trip_and_nothing_trainable():
    mapping = LabelMapping([[4, 8], [15]])
    clone = LabelMapping.from_config(mapping.get_config())
    assert clone.groups == [[4, 8], [15]] and not clone.trainable and clone.trainable_weights == []


def test_label_mapping_can_be_replaced_by_a_map_of_the_same_shape():
    mapping = LabelMapping([[0], [1]])
    logits = np.zeros((1, 1000), dtype="float32")
    logits[0, 7] = 5.0
    mapping.set_groups([[3], [7]])
    assert mapping.groups == [[3], [7]]
    assert keras.ops.convert_to_numpy(mapping(logits))[0, 1] > 0.99
    with pytest.raises(ValueError, match="keep"):
        mapping.set_groups([[3, 4], [7]])


def test_label_map_kinds():
    assert first_k(3) == [[0], [1], [2]]
    assert parse_label_map("first:2", 2) == [[0, 1], [2, 3]]
    assert parse_label_map("9,3+4", 2) == [[9], [3, 4]]
    groups = parse_label_map("random:3", 10, seed=7)
    assert groups == random_choice(10, 3, seed=7) and groups != random_choice(10, 3, seed=8)
    flat = [c for g in groups for c in g]
    assert len(set(flat)) == 30 and all(len(g) == 3 for g in groups)
    with pytest.raises(ValueError, match="entries"):
        parse_label_map("1,2", 3)
    with pytest.raises(ValueError, match="unknown label map"):
        parse_label_map("nearest", 3)
    with pytest.raises(ValueError, match="distinct"):
        parse_label_map("first:200", 10)


def test_full_program_is_added_over_the_resized_image():
    layer = with_random_program(placed(32, (8, 8, 3), image_size=(32, 32), full_program=True))
    assert layer.mask.all()
    images = random_images((2, 8, 8, 3))
    x_adv = keras.ops.convert_to_numpy(layer(images))
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(images.astype("float32") / 127.5 - 1.0, (32, 32)))
    expected = np.clip(resized + keras.ops.convert_to_numpy(layer.program()), -1.0, 1.0)
    np.testing.assert_allclose(x_adv, expected, atol=1e-5)


def host_pixels(size=32, seed=5):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype("float32")


@pytest.mark.parametrize("scale", [0.1, 0.03])
def test_concealed_program_changes_the_host_by_at_most_scale_times_the_range(scale):
    host = host_pixels()
    layer = with_random_program(concealed(32, (12, 10, 1), host_image=host, scale=scale), scale=50.0)
    x_adv = keras.ops.convert_to_numpy(layer(random_images((4, 12, 10, 1))))
    change = np.abs(x_adv - (host / 127.5 - 1.0))
    assert change.max() <= 2 * scale + 1e-6  # the [-1, 1] range is 2 wide
    assert change.max() > 1.5 * scale  # the bound is nearly reached: program and task image both show
    assert x_adv.min() >= -1.0 and x_adv.max() <= 1.0


def test_concealed_task_image_is_tiled_then_shuffled_by_a_fixed_seeded_permutation():
    images = random_images((3, 12, 10, 3))
    grey = np.full((32, 32, 3), 127.5, "float32")  # 0 in [-1, 1]: with W = 0, X_adv = scale * hidden image
    layer = concealed(32, (12, 10, 3), host_image=grey, scale=0.5, permutation_seed=7)
    np.testing.assert_array_equal(layer.encoder.permutation, np.random.default_rng(7).permutation(32 * 32))
    x_adv = keras.ops.convert_to_numpy(layer(images)) / 0.5
    unshuffled = np.empty((3, 32 * 32, 3), "float32")
    unshuffled[:, layer.encoder.permutation] = x_adv.reshape(3, 32 * 32, 3)
    tiled = np.tile(images.astype("float32") / 127.5 - 1.0, (1, 3, 4, 1))[:, :32, :32]
    np.testing.assert_allclose(unshuffled.reshape(3, 32, 32, 3), tiled, atol=1e-5)
    same = concealed(32, (12, 10, 3), host_image=grey, scale=0.5, permutation_seed=7)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(same(images)), x_adv * 0.5)
    other = concealed(32, (12, 10, 3), host_image=grey, scale=0.5, permutation_seed=8)
    assert not np.array_equal(other.encoder.permutation, layer.encoder.permutation)


def test_concealment_config_round_trip_keeps_the_host_out_of_the_config():
    layer = concealed(32, (8, 8, 1), host_image=host_pixels(), scale=0.2, permutation_seed=4, l2=1e-6)
    config = layer.encoder.get_config()
    clone = ConcealedPlacement.from_config(config)
    assert clone.get_config() == config
    assert config["conceal_scale"] == 0.2 and config["permutation_seed"] == 4 and "host_image" not in config
    np.testing.assert_array_equal(clone.permutation, layer.encoder.permutation)
    assert layer.layer.linf_bound == 0.2 and layer.layer.l2 == 1e-6 and layer.mask.all()
    assert [w.path for w in layer.encoder.weights] == ["concealed_placement/host_image"]
    assert not layer.encoder.trainable_weights


@pytest.mark.parametrize("kwargs, message", [
    (dict(host_image=np.zeros((16, 16, 3))), "must be 32x32x3"),
    (dict(host_image=np.full((32, 32, 3), 300.0)), r"\[0, 255\]"),
    (dict(scale=0.0), r"weight of the task input in the host photo, must be in \(0, 1\]"),
    (dict(scale=1.5), r"\(0, 1\]"),
])
def test_concealed_program_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        concealed(32, (8, 8, 3), **kwargs)


def test_encoder_configs_saved_under_older_setting_names_still_load():
    concealed_config = concealed(32, (8, 8, 1), host_image=host_pixels(), scale=0.2).encoder.get_config()
    concealed_config["scale"] = concealed_config.pop("conceal_scale")
    assert ConcealedPlacement.from_config(concealed_config).conceal_scale == 0.2
    placed_config = ImagePlacement(32, (8, 8, 3), full_program=True).get_config()
    placed_config["program_covers_image"] = placed_config.pop("full_program")
    assert ImagePlacement.from_config(placed_config).full_program


def test_part_label_maps_answer_each_row_by_its_own_parts_map():
    from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
    from arnn_tf.layers.part_answers import PartLabelMaps, row_parts

    maps = [LabelMapping([[1, 4], [7]], 10), LinearLabelMap(3, 10, seed=1),
            LabelMapping([[0], [2], [9, 3]], 10)]
    maps[1].set_parameters(np.random.default_rng(1).normal(size=(10, 3)).astype("float32"),
                           np.array([0.5, -1.0, 0.0], "float32"))
    logits = np.random.default_rng(0).normal(size=(7, 10)).astype("float32") * 5
    logits[0, 5] = 500.0  # far above every class part 0 reads: its answer stays exact
    sizes = [2, 0, 5]
    parts = np.asarray(row_parts(np.array(sizes), 7))
    np.testing.assert_array_equal(parts, [0, 0, 2, 2, 2, 2, 2])
    got = np.asarray(PartLabelMaps(maps).answers(logits, parts))
    expected = np.zeros((7, 8), "float32")
    columns = [slice(0, 2), slice(2, 5), slice(5, 8)]
    for row, part in enumerate(parts):
        expected[row, columns[part]] = np.asarray(maps[part](logits[row : row + 1]))[0]
    np.testing.assert_allclose(got, expected, atol=1e-6)
