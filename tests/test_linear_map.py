"""The learned linear label map: what trains, its control, saving, export and resume."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from arnn_tf.backbones import build_backbone, weights_fingerprint
from arnn_tf.cli.main import main
from arnn_tf.export import export_programs
from arnn_tf.layers.label_mapping import LinearLabelMap
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.programs.saved import SavedProgram
from fitting import fit


def toy_task(n=48):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 12, 12, 3)).astype("uint8")
    labels = (images.mean(axis=(1, 2, 3)) > 127).astype("int32") + 2 * (images[:, 0, 0, 0] > 127)
    return ImageTask("toy", (12, 12, 3), ("a", "b", "c", "d"),
                lambda split: tf.data.Dataset.from_tensor_slices((images, labels)))


def toy_model(label_map="linear", seed=0):
    return build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=1), (12, 12, 3), 4,
                                    label_map=label_map, seed=seed)


def images(n=5):
    return np.random.default_rng(3).integers(0, 256, (n, 12, 12, 3)).astype("uint8")


def test_a_map_started_from_a_fixed_one_answers_as_that_map():
    learned, fixed = toy_model("linear:first"), toy_model("first")
    np.testing.assert_allclose(learned.predict(images()), fixed.predict(images()),
                               atol=1e-6)


def test_the_layer_config_round_trips_and_parts_renormalise():
    layer = LinearLabelMap(4, 1000, rate_scale=0.5, seed=2)
    copy = LinearLabelMap.from_config(layer.get_config())
    assert (copy.num_classes, copy.num_source_classes, copy.rate_scale) == (4, 1000, 0.5)
    copy.set_parameters(*layer.parameters())
    logits = np.random.default_rng(0).normal(size=(3, 1000)).astype("float32")
    np.testing.assert_allclose(copy(logits), layer(logits), atol=1e-6)
    whole = keras.ops.convert_to_numpy(layer(logits))
    part = keras.ops.convert_to_numpy(layer.probabilities(logits, 1, 2))
    np.testing.assert_allclose(part, whole[:, 1:3] / whole[:, 1:3].sum(-1, keepdims=True), atol=1e-5)


def test_only_the_program_and_the_map_train_and_the_backbone_is_unchanged():
    model = toy_model()
    before = weights_fingerprint(model.backbone)
    kernel_before, _ = model.label_map.parameters()
    fit(model, toy_task(), steps=6, batch_size=8, lr_schedule="cosine")
    assert {v.path for v in model.trainable_variables} == {
        "frame_program/W", "label_mapping/stored_kernel", "label_mapping/stored_bias"}
    assert weights_fingerprint(model.backbone) == before
    assert np.any(keras.ops.convert_to_numpy(model.program.weight.value))
    assert not np.allclose(model.label_map.parameters()[0], kernel_before)


def test_the_control_holds_the_program_at_zero_and_trains_the_map():
    model = toy_model()
    kernel_before, _ = model.label_map.parameters()
    fit(model, toy_task(), steps=6, batch_size=8, label_map="linear", freeze_program=True)
    assert not np.any(keras.ops.convert_to_numpy(model.program.weight.value))
    assert not np.allclose(model.label_map.parameters()[0], kernel_before)
    with pytest.raises(ValueError, match="needs a learned label map"):
        fit(toy_model("first"), toy_task(), steps=1, batch_size=8, freeze_program=True)


def test_the_map_learns_at_a_fifth_of_the_program_rate():
    model = toy_model()
    kernel_before, _ = model.label_map.parameters()
    fit(model, toy_task(), steps=1, batch_size=8, learning_rate=0.05)
    step = np.abs(model.label_map.parameters()[0] - kernel_before)
    assert step.max() == pytest.approx(0.01, rel=1e-3)  # Adam's first step: the rate, per entry
    assert np.abs(keras.ops.convert_to_numpy(model.program.weight.value)).max() == pytest.approx(0.05, rel=1e-3)


def test_a_learned_map_is_saved_reloaded_kept_by_keras_and_exported(tmp_path):
    model = toy_model()
    fit(model, toy_task(), steps=4, batch_size=8)
    expected = model.predict(images())
    path = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=1, task_name="toy",
                                   class_names=list("abcd"), label_map="linear").save(tmp_path / "p")
    assert json.loads((path / "program.json").read_text())["format_version"] == 6
    loaded = SavedProgram.load(path)
    np.testing.assert_allclose(loaded.build_model().predict(images()), expected, atol=1e-6)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored.predict(images()), expected, atol=1e-6)
    served = tf.saved_model.load(str(export_programs([path], tmp_path / "export")))
    outputs = served.signatures["serving_default"](images=tf.constant(images()))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)


def test_a_fixed_program_cannot_warm_start_a_learned_one_the_other_way_round(tmp_path):
    learned = toy_model()
    path = SavedProgram.from_model(learned, backbone_name="tiny_cnn", weights=None, seed=1, task_name="toy",
                                   class_names=list("abcd"), label_map="linear").save(tmp_path / "p")
    with pytest.raises(ValueError, match="trained with label map 'linear'"):
        SavedProgram.load(path).warm_start(toy_model("first"))
    fresh = toy_model("linear", seed=5)
    SavedProgram.load(path).warm_start(fresh)
    np.testing.assert_allclose(fresh.label_map.parameters()[0], learned.label_map.parameters()[0])


def test_a_learned_map_cannot_also_be_remapped_every_epoch():
    with pytest.raises(ValueError, match="linear:frequency"):
        toy_model("linear:iterative")


def test_train_with_a_learned_map_and_its_control_then_rerun(tmp_path, capsys):
    folder = tmp_path / "data"
    rng = np.random.default_rng(0)
    from PIL import Image
    for split, count in (("train", 8), ("test", 4)):
        for name, value in (("dark", 20), ("bright", 230)):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(value + rng.integers(-10, 10, (16, 16, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(folder / split / name / f"{i}.png")
    common = ["train", "--task", f"folder:{folder}", "--backbone", "tiny_cnn", "--weights", "none",
              "--steps", "4", "--batch-size", "4", "--label-map", "linear:frequency"]
    for run, extra in (("program", []), ("control", ["--freeze-program"])):
        assert main([*common, *extra, "--out", str(tmp_path / run)]) == 0
        assert main([*common, *extra, "--out", str(tmp_path / run)]) == 0  # rerun: resumes, finished
        metrics = json.loads((tmp_path / run / "metrics.json").read_text())
        assert metrics["label_map"] == "linear:frequency" and metrics["steps"] == 4
        assert metrics["freeze_program"] == (run == "control")
    control_w = np.load(tmp_path / "control" / "program" / "W.npy")
    assert not np.any(control_w) and np.any(np.load(tmp_path / "program" / "program" / "W.npy"))
    assert main(["evaluate", "--program", str(tmp_path / "program" / "program"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    trained = json.loads((tmp_path / "program" / "metrics.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(trained["test_accuracy"])
    # the map first, then W: the control's program (saved with W frozen) starts a run that trains W
    control_map = np.load(tmp_path / "control" / "program" / "parts" / "0" / "label_map.npz")
    assert main([*common, "--lr", "1e-12", "--init-program", str(tmp_path / "control" / "program"),
                 "--out", str(tmp_path / "then")]) == 0
    then_map = np.load(tmp_path / "then" / "program" / "parts" / "0" / "label_map.npz")
    for key in control_map.files:
        np.testing.assert_allclose(then_map[key], control_map[key], atol=1e-6)
    assert np.any(np.load(tmp_path / "then" / "program" / "W.npy"))
