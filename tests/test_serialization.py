"""Every layer and model kind through the shared round-trip checks (tests/serialization.py)."""

import numpy as np
import pytest
from serialization import run_layer_serialization_test, run_program_round_trip_test

from arnn_tf.backbones import build_backbone
from arnn_tf.export import program_names, signature_names
from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.placement import ConcealedPlacement, ImagePlacement
from arnn_tf.modalities.text import TokenPatchEncoder, vectorizer_state
from arnn_tf.modalities.text.model import build_text_model
from arnn_tf.models.reprogrammed import ReprogrammedModel, frame_program_for
from arnn_tf.programs.parts import saved_parts
from arnn_tf.programs.saved import SavedProgram

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (3, 10, 10, 3)).astype("uint8")
LOGITS = RNG.normal(size=(3, 1000)).astype("float32")
HOST = RNG.integers(0, 256, (48, 48, 3)).astype("float32")


def with_weights(layer, inputs):
    layer(inputs)
    layer.set_weights([RNG.normal(size=w.shape).astype(w.dtype) for w in layer.get_weights()])
    return layer


def test_concealed_placement(tmp_path):
    layer = ConcealedPlacement(48, (10, 10, 3), conceal_scale=0.2, permutation_seed=3, host_image=HOST)
    run_layer_serialization_test(layer, IMAGES, tmp_path, init_extras={"host_image": HOST})


def test_label_map_layers(tmp_path):
    run_layer_serialization_test(LabelMapping([[3, 7], [1], [999]]), LOGITS, tmp_path)
    learned = with_weights(LinearLabelMap(4, rate_scale=0.5, seed=1), LOGITS)
    run_layer_serialization_test(learned, LOGITS, tmp_path)


def test_text_encoder_layer(tmp_path):
    ids = RNG.integers(0, 50, (3, 7)).astype("int32")
    layer = TokenPatchEncoder(50, frame_size=32, patch_size=8)
    run_layer_serialization_test(layer, ids, tmp_path)


def test_text_encoder_blended_into_a_photo(tmp_path):
    ids = RNG.integers(0, 50, (3, 7)).astype("int32")
    host = RNG.integers(0, 256, (32, 32, 3)).astype("float32")
    layer = TokenPatchEncoder(50, frame_size=32, patch_size=8, conceal_scale=0.2, host_image=host)
    run_layer_serialization_test(layer, ids, tmp_path, init_extras={"host_image": host})


@pytest.mark.parametrize("options", [
    {}, {"image_size": (20, 20), "border_width": 4},
    {"image_size": (20, 20), "full_program": True},
], ids=["padded", "border", "full"])
def test_image_placement_encoder(options, tmp_path):
    run_layer_serialization_test(ImagePlacement(48, (10, 10, 3), **options), IMAGES, tmp_path)


def test_frame_program_layer(tmp_path):
    canvas = RNG.uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    layer = with_weights(FrameProgram(16, linf_bound=0.5, l2=1e-3), canvas)
    run_layer_serialization_test(layer, canvas, tmp_path)


def test_frame_program_written_as_a_code(tmp_path):
    canvas = RNG.uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    layer = with_weights(FrameProgram(16, l2=1e-3, code_dimension=12, code_seed=5), canvas)
    assert tuple(layer.weight.shape) == (12,)
    run_layer_serialization_test(layer, canvas, tmp_path)


def test_parts_on_their_own_regions_share_no_entry_of_the_program(tmp_path):
    border = np.ones((16, 16, 3), "float32")
    border[4:12, 4:12] = 0
    layer = FrameProgram(16, masks=[border, border, np.ones((16, 16, 3), "float32")],
                         part_regions=True)
    masks = np.stack(layer.masks)
    assert masks.sum(axis=0).max() == 1  # no pixel in two parts' regions
    np.testing.assert_array_equal(masks[:2].sum(axis=0), border * masks[:2].sum(axis=0))
    assert abs(masks[2].sum() / (16 * 16 * 3) - 1 / 3) < 0.05  # about a third of the frame
    tiles = masks[2][::2, ::2, 0]  # whole tiles of 2 x 2 pixels on a 16 frame
    np.testing.assert_array_equal(np.kron(tiles, np.ones((2, 2))), masks[2][..., 0])
    assert layer.get_config()["part_regions"] is True
    rebuilt = FrameProgram.from_config(layer.get_config())
    rebuilt.set_masks([border, border, np.ones((16, 16, 3), "float32")])
    np.testing.assert_array_equal(np.stack(rebuilt.masks), masks)
    assert "part_regions" not in FrameProgram(16).get_config()


def test_a_code_projected_onto_a_finer_grid(tmp_path):
    canvas = RNG.uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    layer = with_weights(FrameProgram(16, code_dimension=12, code_seed=5, code_grid=8), canvas)
    assert layer.projection.shape == (12, 8 * 8 * 3)
    assert layer.get_config()["code_grid"] == 8
    run_layer_serialization_test(layer, canvas, tmp_path)
    with pytest.raises(ValueError, match="code_grid must be a side from 1 to the frame's 16"):
        FrameProgram(16, code_dimension=12, code_grid=17)


def test_a_program_written_as_a_code_saves_its_code_and_answers_the_same(tmp_path):
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=4), (10, 10, 3), 3,
                                     label_map="linear", code={"code_dimension": 30, "code_seed": 2})
    model.program.weight.assign(RNG.normal(size=30))
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=4,
                                      task_name="toy", class_names=["a", "b", "c"],
                                      label_map="linear")
    run_program_round_trip_test(model, IMAGES, tmp_path, program)
    assert np.load(tmp_path / "program" / "W.npy").shape == (30,)


@pytest.mark.parametrize("blended", [False, True])
def test_text_model(blended, tmp_path):
    import keras

    vectorizer = keras.layers.TextVectorization(output_sequence_length=9)
    vectorizer.adapt(["good film", "bad film", "a very good plot"])
    texts = np.array(["good plot", "bad", ""])
    host = {"host_image": RNG.integers(0, 256, (48, 48, 3)), "conceal_scale": 0.3} if blended else {}
    model = build_text_model(build_backbone("tiny_cnn", None, seed=4),
                             vectorizer.vocabulary_size(), 2, patch_size=8, **host)
    model.program.weight.assign(RNG.normal(size=(48, 48, 3)))
    ids = keras.ops.convert_to_numpy(vectorizer(texts)).astype("int32")
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=4,
                                      task_name="text:toy", class_names=["neg", "pos"],
                                      label_map="linear",
                                      input_state={"vectorizer": vectorizer_state(vectorizer)})
    run_program_round_trip_test(model, ids, tmp_path, program,
                                served=[("serving_default", {"text": texts}, ids)])


@pytest.mark.parametrize("kind", ["first", "linear", "concealed"])
def test_reprogrammed_models(kind, tmp_path):
    options = {"host_image": HOST} if kind == "concealed" else {}
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=4), (10, 10, 3), 3,
                                     label_map="first" if kind == "concealed" else kind, **options)
    model.program.weight.assign(RNG.normal(size=(48, 48, 3)))
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=4,
                                      task_name="toy", class_names=["a", "b", "c"],
                                      label_map="first" if kind == "concealed" else kind)
    run_program_round_trip_test(model, IMAGES, tmp_path, program)


def test_shared_program_model(tmp_path):
    import keras

    vectorizer = keras.layers.TextVectorization(output_sequence_length=9)
    vectorizer.adapt(["good film", "bad film", "a very good plot"])
    texts = np.array(["good plot", "bad", ""])
    ids = keras.ops.convert_to_numpy(vectorizer(texts)).astype("int32")
    encoders = [TokenPatchEncoder(vectorizer.vocabulary_size(), 48, 8, name="part0_encoder"),
                ImagePlacement(48, (10, 10, 3), name="part1_encoder")]
    maps = [LinearLabelMap(2, name="part0_map"), LabelMapping([[1], [5], [9]], name="part1_map")]
    model = ReprogrammedModel(frame_program_for(encoders, linf_bound=0.5),
                              build_backbone("tiny_cnn", None, seed=4), maps, encoders)
    model.program.weight.assign(RNG.normal(size=(48, 48, 3)))
    state = {"vectorizer": vectorizer_state(vectorizer)}
    members = saved_parts(model, ["text:words", "counts"], [["neg", "pos"], ["a", "b", "c"]],
                          [state, None])
    program = SavedProgram.from_parts(model, members, backbone_name="tiny_cnn",
                                      weights=None, seed=4, task_name="text:words+counts",
                                      label_map="linear")
    names = signature_names(program_names([program], None), [program])
    run_program_round_trip_test(model, [ids, IMAGES], tmp_path, program, served=[
        (names[0], {"text": texts}, ids), (names[1], {"images": IMAGES}, IMAGES)])


def test_backbone_folding_layers(tmp_path):
    from arnn_tf.backbones.folding import FoldedLayer, ScaledNormalization

    x = RNG.normal(size=(3, 4, 4, 3)).astype("float32")
    run_layer_serialization_test(FoldedLayer(name="folded"), x, tmp_path)
    norm = ScaledNormalization(input_scale=2.0, input_offset=-1.0, output_scale=[1.0, 2.0, 3.0],
                               output_offset=0.5, mean=[0.1, 0.2, 0.3], variance=[1.0, 4.0, 9.0],
                               name="scaled_normalization")
    run_layer_serialization_test(norm, x, tmp_path)
