"""The saved-program format: round trip, safety, and refusing a mismatched backbone."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.placement import ConcealedPlacement, ImagePlacement
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.programs.saved import ProgramMismatchError, SavedProgram
from arnn_tf.tasks.base import TaskPart


def fresh_model(backbone_seed=3, label_map="random", **options):
    """A zero program on tiny_cnn; with the defaults, the same settings as the ``saved`` program."""
    options = {"linf_bound": 0.7, **options}
    return build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=backbone_seed), (10, 10, 3), 3,
                                    label_map=label_map, seed=2, **options)


@pytest.fixture()
def saved(tmp_path):
    model = fresh_model()
    model.program.weight.assign(np.random.default_rng(0).normal(size=model.program.weight.shape))
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3, task_name="toy",
                                      class_names=["a", "b", "c"], label_map="random",
                                      metrics={"test_accuracy": 0.5})
    path = program.save(tmp_path / "program")
    return model, path


def test_saved_program_reloads_to_identical_predictions(saved):
    model, path = saved
    loaded = SavedProgram.load(path)
    images = np.random.default_rng(1).integers(0, 256, (6, 10, 10, 3)).astype("uint8")
    rebuilt = loaded.build_model()
    np.testing.assert_array_equal(rebuilt.predict(images, verbose=0), model.predict(images, verbose=0))
    assert loaded.class_names == ["a", "b", "c"] and loaded.metrics == {"test_accuracy": 0.5}
    assert rebuilt.label_map.groups == model.label_map.groups
    assert rebuilt.program.linf_bound == 0.7


def test_saved_program_is_small_and_pickle_free(saved):
    _, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["W.npy", "parts", "program.json"]
    assert sorted(p.name for p in (path / "parts" / "0").iterdir()) == ["encoder.npz"]
    assert np.load(path / "W.npy", allow_pickle=False).shape == (48, 48, 3)
    document = json.loads((path / "program.json").read_text())
    assert document["backbone"]["name"] == "tiny_cnn" and len(document["backbone"]["fingerprint"]) == 64
    assert document["task"]["modality"] == "image" and document["format_version"] == 6
    (part,) = document["parts"]
    assert part["encoder"]["config"]["task_image_shape"] == [10, 10, 3] and part["name"] == "toy"


def test_other_weights_are_refused(saved):
    _, path = saved
    with pytest.raises(ProgramMismatchError, match="trained on backbone 'tiny_cnn'"):
        SavedProgram.load(path).build_model(build_backbone("tiny_cnn", None, seed=4))


def test_other_backbone_is_refused(saved, tmp_path):
    _, path = saved
    document = json.loads((path / "program.json").read_text())
    document["backbone"]["seed"] = 9  # the same network name, rebuilt with other random weights
    (path / "program.json").write_text(json.dumps(document))
    with pytest.raises(ProgramMismatchError):
        SavedProgram.load(path).build_model()


def test_a_task_with_other_images_or_classes_is_refused(saved):
    program = SavedProgram.load(saved[1])
    task = ImageTask(name="toy", image_shape=(10, 10, 3), class_names=("a", "b", "c"), _load=None)
    assert program.matching_task(task) is task
    for other in ({"image_shape": (10, 10, 1)}, {"class_names": ("a", "b")}):
        with pytest.raises(ProgramMismatchError, match="does not match the program's task 'toy'"):
            program.matching_task(dataclasses.replace(task, **other))


def test_warm_start_continues_from_the_saved_weight(saved):
    model, path = saved
    fresh = fresh_model(l2=0.5)  # the weight of ||W||^2 is a training choice, free to change
    assert not np.any(fresh.program.weight.numpy())
    SavedProgram.load(path).warm_start(fresh)
    images = np.random.default_rng(1).integers(0, 256, (4, 10, 10, 3)).astype("uint8")
    np.testing.assert_array_equal(fresh.program.weight.numpy(), model.program.weight.numpy())
    np.testing.assert_array_equal(fresh.predict(images, verbose=0), model.predict(images, verbose=0))


@pytest.mark.parametrize("label_map", ["first", "first:3"])
def test_warm_start_with_relabel_accepts_another_label_map(saved, label_map):
    model, path = saved
    fresh = fresh_model(label_map=label_map)
    own_groups = fresh.label_map.groups
    assert own_groups != model.label_map.groups
    with pytest.raises(ProgramMismatchError, match="label map 'random'"):
        SavedProgram.load(path).warm_start(fresh)
    SavedProgram.load(path).warm_start(fresh, relabel=True)  # training recomputes the map
    assert fresh.label_map.groups == own_groups
    np.testing.assert_array_equal(fresh.program.weight.numpy(), model.program.weight.numpy())


@pytest.mark.parametrize("options, message", [
    ({"linf_bound": 0.5}, "linf_bound 0.7 \\(here 0.5\\)"),
    ({"image_size": (8, 8)}, "image_size None \\(here \\[8, 8\\]\\)"),
    ({"backbone_seed": 4}, "trained on backbone"),
])
def test_warm_start_refuses_other_settings_or_weights(saved, options, message):
    _, path = saved
    fresh = fresh_model(**options)
    with pytest.raises(ProgramMismatchError, match=message):
        SavedProgram.load(path).warm_start(fresh)
    assert not np.any(fresh.program.weight.numpy())


def test_not_a_program_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved program"):
        SavedProgram.load(tmp_path)
    (tmp_path / "program.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="format"):
        SavedProgram.load(tmp_path)


def test_pickled_weight_file_is_not_loaded(saved):
    _, path = saved
    np.save(path / "W.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        SavedProgram.load(path)


def test_multi_task_parts_round_trip_and_old_programs_load_without_them(saved, tmp_path):
    model, path = saved
    parts = (TaskPart("left", 0, 2), TaskPart("right", 2, 1))
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3, task_name="left+right",
                                      class_names=["left/x", "left/y", "right/z"], joined=parts)
    loaded = SavedProgram.load(program.save(tmp_path / "combined"))
    assert loaded.joined == parts and len(loaded.parts) == 1
    assert loaded.part_class_names(parts[0]) == ["x", "y"] and loaded.part_class_names(parts[1]) == ["z"]
    document = json.loads((as_format_4(path) / "program.json").read_text())
    assert document["task"]["parts"] == []
    del document["task"]["parts"]  # as written before joined data sets were recorded
    (path / "program.json").write_text(json.dumps(document))
    assert SavedProgram.load(path).joined == ()


@pytest.mark.parametrize("parts", [
    (TaskPart("a", 0, 2),),  # leaves class 2 out
    (TaskPart("a", 0, 2), TaskPart("b", 1, 2)),  # overlapping
    (TaskPart("a", 0, 3), TaskPart("b", 3, 0)),  # empty
])
def test_parts_that_do_not_split_the_classes_are_refused(saved, parts):
    model, _ = saved
    with pytest.raises(ValueError, match="consecutive, non-empty ranges"):
        SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3, task_name="toy",
                                class_names=["a", "b", "c"], joined=parts)


@pytest.fixture()
def concealed(tmp_path):
    backbone = build_backbone("tiny_cnn", None, seed=3)
    host = np.random.default_rng(4).integers(0, 256, (48, 48, 3)).astype("uint8")
    model = build_reprogrammed_model(backbone, (10, 10, 1), 3, seed=6, host_image=host, conceal_scale=0.05)
    model.program.weight.assign(np.random.default_rng(0).normal(size=model.program.weight.shape))
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3, task_name="toy",
                                      class_names=["a", "b", "c"])
    return model, host, program.save(tmp_path / "concealed")


def test_concealed_program_round_trips_with_its_host_image(concealed):
    model, host, path = concealed
    assert sorted(p.name for p in path.iterdir()) == ["W.npy", "parts", "program.json"]
    with np.load(path / "parts" / "0" / "encoder.npz", allow_pickle=False) as arrays:
        np.testing.assert_array_equal(arrays["0"], host)
    document = json.loads((path / "program.json").read_text())
    assert document["format_version"] == 6 and document["program_layer"] == "FrameProgram"
    encoder = document["parts"][0]["encoder"]
    config = encoder["config"]
    assert encoder["class_name"] == "ConcealedPlacement"
    assert config["conceal_scale"] == 0.05 and config["permutation_seed"] == 6
    assert document["program"]["linf_bound"] == 0.05
    rebuilt = SavedProgram.load(path).build_model()
    assert isinstance(rebuilt.encoder, ConcealedPlacement)
    images = np.random.default_rng(1).integers(0, 256, (4, 10, 10, 1)).astype("uint8")
    np.testing.assert_array_equal(rebuilt.predict(images, verbose=0), model.predict(images, verbose=0))


def test_warm_start_of_a_concealed_program_needs_the_same_host_photo_and_encoder(concealed, saved):
    model, host, path = concealed
    program = SavedProgram.load(path)
    backbone = build_backbone("tiny_cnn", None, seed=3)
    same = build_reprogrammed_model(backbone, (10, 10, 1), 3, seed=6, host_image=host, conceal_scale=0.05)
    program.warm_start(same)
    np.testing.assert_array_equal(same.program.weight.numpy(), model.program.weight.numpy())
    other = build_reprogrammed_model(backbone, (10, 10, 1), 3, seed=6, host_image=255 - host,
                                     conceal_scale=0.05)
    with pytest.raises(ProgramMismatchError, match="another host_image"):
        program.warm_start(other)
    plain = build_reprogrammed_model(backbone, (10, 10, 1), 3, seed=6, linf_bound=0.05,
                                     image_size=(48, 48), full_program=True)
    with pytest.raises(ProgramMismatchError, match="through ConcealedPlacement, this model "
                                                   "through ImagePlacement"):
        program.warm_start(plain)


def as_format_4(path):
    """Rewrites a program of one part as format 4 wrote it: the encoder, label map and class
    names at the top of program.json, the part's files beside W.npy."""
    document = json.loads((path / "program.json").read_text())
    (part,) = document.pop("parts")
    document.update(format_version=4, encoder=part["encoder"])
    document["label_map"]["groups"] = part["label_map"]["groups"]
    document["task"].update(class_names=part["class_names"], parts=document["task"].pop("joined"))
    folder = path / "parts" / "0"
    with np.load(folder / "encoder.npz", allow_pickle=False) as arrays:
        has_weights = bool(arrays.files)
    for name in ("encoder.npz", "label_map.npz", "input.json"):
        if (folder / name).exists() and (name != "encoder.npz" or has_weights):
            (folder / name).rename(path / name)
    shutil.rmtree(path / "parts")
    (path / "program.json").write_text(json.dumps(document))
    return path


def as_format_2(path):
    """Rewrites a concealed program's folder as releases before the concealment encoder wrote
    it: one ConcealedProgram layer, its host photo in host_image.npy."""
    document = json.loads((as_format_4(path) / "program.json").read_text())
    encoder = document.pop("encoder")["config"]
    with np.load(path / "encoder.npz", allow_pickle=False) as arrays:
        np.save(path / "host_image.npy", arrays["0"], allow_pickle=False)
    (path / "encoder.npz").unlink()
    document.update(format_version=2, program_layer="ConcealedProgram", program={
        "frame_size": encoder["frame_size"], "task_image_shape": encoder["task_image_shape"],
        "l2": document["program"]["l2"], "scale": encoder["conceal_scale"],
        "permutation_seed": encoder["permutation_seed"]})
    (path / "program.json").write_text(json.dumps(document))
    return path


def test_format_2_concealed_programs_load_with_equal_answers_and_save_as_format_6(concealed, tmp_path):
    model, host, path = concealed
    old = SavedProgram.load(as_format_2(path))
    rebuilt = old.build_model()
    assert isinstance(rebuilt.encoder, ConcealedPlacement) and rebuilt.encoder.conceal_scale == 0.05
    np.testing.assert_array_equal(old.part.encoder_weights[0], host)
    images = np.random.default_rng(1).integers(0, 256, (4, 10, 10, 1)).astype("uint8")
    np.testing.assert_array_equal(rebuilt.predict(images, verbose=0), model.predict(images, verbose=0))
    again = old.save(path)
    assert sorted(p.name for p in again.iterdir()) == ["W.npy", "parts", "program.json"]
    assert json.loads((again / "program.json").read_text())["format_version"] == 6


def test_plain_programs_are_a_placement_and_a_frame_program_and_keep_no_host_image(
    saved, concealed
):
    _, path = saved
    document = json.loads((path / "program.json").read_text())
    assert document["format_version"] == 6 and document["program_layer"] == "FrameProgram"
    assert document["parts"][0]["encoder"]["class_name"] == "ImagePlacement"
    assert document["task"]["modality"] == "image"
    _, _, concealed_path = concealed
    as_format_2(concealed_path)
    SavedProgram.load(path).save(concealed_path)  # a plain program saved over a concealed one
    assert not (concealed_path / "host_image.npy").exists()
    assert not (concealed_path / "encoder.npz").exists()
    with np.load(concealed_path / "parts" / "0" / "encoder.npz", allow_pickle=False) as arrays:
        assert not arrays.files  # the placement has no weights; the host photo is gone
    assert isinstance(SavedProgram.load(concealed_path).build_model().encoder, ImagePlacement)


def test_concealed_program_without_a_readable_host_image_is_refused(concealed):
    _, _, path = concealed
    with open(path / "parts" / "0" / "encoder.npz", "wb") as f:
        np.savez(f, **{"0": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="unreadable.*pickle"):
        SavedProgram.load(path)
    (path / "parts" / "0" / "encoder.npz").unlink()
    with pytest.raises(ValueError, match="part 0's files are missing or unreadable.*encoder.npz"):
        SavedProgram.load(path)


def test_a_format_4_concealed_program_without_its_host_photo_is_refused(concealed):
    _, _, path = concealed
    (as_format_4(path) / "encoder.npz").unlink()
    with pytest.raises(FileNotFoundError, match="no encoder.npz"):
        SavedProgram.load(path)


def test_format_2_program_without_a_readable_host_image_is_refused(concealed):
    _, _, path = concealed
    as_format_2(path)
    np.save(path / "host_image.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        SavedProgram.load(path)
    (path / "host_image.npy").unlink()
    with pytest.raises(FileNotFoundError, match="no host_image.npy"):
        SavedProgram.load(path)


def test_flip_average_round_trips_and_old_programs_load_without_it(saved, tmp_path):
    model, path = saved
    assert not SavedProgram.load(path).flip_average
    averaging = dataclasses.replace(SavedProgram.load(path), flip_average=True)
    loaded = SavedProgram.load(averaging.save(tmp_path / "averaging"))
    assert loaded.flip_average and loaded.build_model().flip_average
    images = np.random.default_rng(1).integers(0, 256, (6, 10, 10, 3)).astype("uint8")
    expected = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(loaded.build_model().predict(images, verbose=0), expected, atol=1e-6)
    document = json.loads((path / "program.json").read_text())
    assert document["inference"] == {"flip_average": False}
    del document["inference"]  # as written before flip averaging was recorded
    (path / "program.json").write_text(json.dumps(document))
    assert not SavedProgram.load(path).flip_average
    document["inference"] = {"flip_average": "yes"}
    (path / "program.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="flip_average must be true or false"):
        SavedProgram.load(path)


def test_a_program_naming_an_unknown_input_encoder_is_refused_clearly(saved, tmp_path):
    _, path = saved
    document = json.loads((path / "program.json").read_text())
    document["parts"][0]["encoder"]["class_name"] = "AudioSpectrogram"
    (path / "program.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="program.json: unknown input encoder 'AudioSpectrogram'; "
                                         "this arnn-tf reads .*ImagePlacement"):
        SavedProgram.load(path)


def test_a_format_4_program_loads_with_equal_answers_and_saves_as_format_6(saved):
    model, path = saved
    old = SavedProgram.load(as_format_4(path))
    assert len(old.parts) == 1 and old.class_names == ["a", "b", "c"] and old.label_map == "random"
    images = np.random.default_rng(1).integers(0, 256, (4, 10, 10, 3)).astype("uint8")
    np.testing.assert_array_equal(old.build_model().predict(images, verbose=0),
                                  model.predict(images, verbose=0))
    again = SavedProgram.load(old.save(path))
    assert json.loads((path / "program.json").read_text())["format_version"] == 6
    assert again.part.label_groups == model.label_map.groups


def test_a_format_3_program_of_one_layer_loads_with_equal_answers(saved):
    model, path = saved
    document = json.loads((as_format_4(path) / "program.json").read_text())
    encoder, program = document.pop("encoder")["config"], document["program"]
    document.update(format_version=3, program_layer="AdversarialProgram", program={
        "frame_size": encoder["frame_size"], "task_image_shape": encoder["task_image_shape"],
        "image_size": encoder["image_size"], "border_width": encoder["border_width"],
        "program_covers_image": encoder["full_program"], "linf_bound": program["linf_bound"],
        "l2": program["l2"]})
    (path / "program.json").write_text(json.dumps(document))
    old = SavedProgram.load(path)
    assert isinstance(old.build_model().encoder, ImagePlacement)
    images = np.random.default_rng(1).integers(0, 256, (4, 10, 10, 3)).astype("uint8")
    np.testing.assert_array_equal(old.build_model().predict(images, verbose=0),
                                  model.predict(images, verbose=0))
