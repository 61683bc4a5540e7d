"""The saved-program format: round trip, safety, and refusing a mismatched backbone."""

import json

import numpy as np
import pytest

from arnn_tf.backbones import build_backbone
from arnn_tf.model import build_reprogrammed_model
from arnn_tf.programs import ProgramMismatchError, SavedProgram
from arnn_tf.tasks import TaskPart


@pytest.fixture()
def saved(tmp_path):
    backbone = build_backbone("tiny_cnn", None, seed=3)
    model = build_reprogrammed_model(backbone, (10, 10, 3), 3, label_map="random", seed=2, linf_bound=0.7)
    model.program.weight.assign(np.random.default_rng(0).normal(size=model.program.weight.shape))
    program = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3, task_name="toy",
                                      class_names=["a", "b", "c"], label_map_spec="random",
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
    assert sorted(p.name for p in path.iterdir()) == ["W.npy", "program.json"]
    assert np.load(path / "W.npy", allow_pickle=False).shape == (48, 48, 3)
    document = json.loads((path / "program.json").read_text())
    assert document["backbone"]["name"] == "tiny_cnn" and len(document["backbone"]["fingerprint"]) == 64
    assert document["task"]["image_shape"] == [10, 10, 3]


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
                                      class_names=["left/x", "left/y", "right/z"], parts=parts)
    loaded = SavedProgram.load(program.save(tmp_path / "combined"))
    assert loaded.parts == parts
    assert loaded.part_class_names(parts[0]) == ["x", "y"] and loaded.part_class_names(parts[1]) == ["z"]
    document = json.loads((path / "program.json").read_text())
    assert document["task"]["parts"] == []
    del document["task"]["parts"]  # as written before parts were recorded
    (path / "program.json").write_text(json.dumps(document))
    assert SavedProgram.load(path).parts == ()


@pytest.mark.parametrize("parts", [
    (TaskPart("a", 0, 2),),  # leaves class 2 out
    (TaskPart("a", 0, 2), TaskPart("b", 1, 2)),  # overlapping
    (TaskPart("a", 0, 3), TaskPart("b", 3, 0)),  # empty
])
def test_parts_that_do_not_split_the_classes_are_refused(saved, parts):
    model, _ = saved
    with pytest.raises(ValueError, match="consecutive, non-empty ranges"):
        SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3, task_name="toy",
                                class_names=["a", "b", "c"], parts=parts)
