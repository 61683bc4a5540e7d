"""One program for text and images: a mixed task trains one shared frame program with each
part's own encoder and map, keeps per-part classes, and saves and reloads with equal answers."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from test_text import toy_sentiment

from arnn_tf.modalities.image.placement import ImagePlacement
from arnn_tf.modalities.text import TokenPatchEncoder
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import RECIPES
from arnn_tf.runs import build_model, saved_program, train
from arnn_tf.tasks.parts import MultiPartTask
from arnn_tf.tasks.specs import get_task
from arnn_tf.training.evaluation import evaluate_parts, evaluate_program

TEXT = RECIPES["text"].replace(frame_size=None)  # the tiny backbone's own 48 x 48 frame


def mixed_recipe(data: Path, **fields):
    return TEXT.replace(
        task=f"text:{data}+counting", backbone="tiny_cnn", weights="none", patch_size=8, **fields
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    root = tmp_path_factory.mktemp("mixed")
    toy_sentiment(root / "data")
    metrics = train(mixed_recipe(root / "data", steps=40), root / "run", verbose=False)
    return root / "data", metrics, root / "run"


def test_a_mixed_task_keeps_each_parts_input_and_classes(tmp_path: Path) -> None:
    toy_sentiment(tmp_path)
    task = get_task(f"text:{tmp_path}+counting")
    assert isinstance(task, MultiPartTask) and task.modality == "mixed"
    assert [(p.first_class, p.num_classes) for p in task.parts] == [(0, 2), (2, 10)]
    assert task.class_names[:3] == (f"text:{tmp_path}/neg", f"text:{tmp_path}/pos", "counting/1")
    (ids, images), labels = next(iter(task.dataset("train", 16, shuffle=True, repeat=True)))
    assert ids.dtype == "int32" and images.shape[1:] == (36, 36, 3)
    assert len(ids) + len(images) == 16 and labels.shape == (16,)
    assert set(labels.numpy()[: len(ids)]) <= {0, 1}
    assert set(labels.numpy()[len(ids) :]) <= set(range(2, 12))


def test_one_frame_program_is_shared_and_only_it_the_encoders_and_maps_train(
    tmp_path: Path,
) -> None:
    toy_sentiment(tmp_path)
    model = build_model(mixed_recipe(tmp_path), get_task(f"text:{tmp_path}+counting"))
    assert isinstance(model, ReprogrammedModel) and len(model.encoders) == 2
    assert isinstance(model.encoders[0], TokenPatchEncoder)
    assert isinstance(model.encoders[1], ImagePlacement)
    assert {v.path for v in model.trainable_variables} == {
        "frame_program/W", "part0_encoder/table", "part0_map/stored_kernel",
        "part0_map/stored_bias", "part1_map/stored_kernel", "part1_map/stored_bias",
    }  # fmt: skip
    np.testing.assert_array_equal(model.program.masks[0], np.ones((48, 48, 3)))
    assert model.program.masks[1][24, 24].sum() == 0 and model.program.masks[1][0, 0].all()


def test_training_reports_each_part_and_the_program_reloads_equal(
    trained: tuple[Path, dict, Path],
) -> None:
    data, metrics, run = trained
    per_part = metrics["test_accuracy_per_task"]
    assert list(per_part) == [f"text:{data}", "counting"] and per_part[f"text:{data}"] >= 0.8
    assert metrics["test_accuracy"] == pytest.approx(np.mean(list(per_part.values())))
    document = json.loads((run / "program" / "program.json").read_text())
    assert document["format_version"] == 6 and len(document["parts"]) == 2
    saved = SavedProgram.load(run / "program")
    task = saved.matching_task(get_task(saved.task_name))
    assert evaluate_parts(saved.build_model(), task) == pytest.approx(per_part)
    assert evaluate_program(saved.build_model(), task, verbose=0)["accuracy"] == pytest.approx(
        metrics["test_accuracy"]
    )


def test_a_mixed_program_refuses_another_task_and_unshared_fields(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    data, _, run = trained
    saved = SavedProgram.load(run / "program")
    with pytest.raises(ValueError, match="has no parts with inputs of their own"):
        saved.matching_task(get_task("counting"))
    with pytest.raises(ValueError, match=r"\(36x36x3 images, .* does not match .*\(text, 2 classes"):
        saved.matching_task(get_task(f"counting+text:{data}"))


def test_parts_are_concealed_in_one_host_photo_and_reload_equal(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    from PIL import Image

    from arnn_tf.modalities.image.placement import ConcealedPlacement

    data, _, _ = trained
    host = tmp_path / "host.png"
    pixels = np.random.default_rng(3).integers(0, 256, (40, 60, 3)).astype("uint8")
    Image.fromarray(pixels).save(host)
    recipe = mixed_recipe(data, conceal=str(host), conceal_scale=0.1)
    task = get_task(f"text:{data}+counting")
    model = build_model(recipe, task)
    text, image = model.encoders
    assert isinstance(image, ConcealedPlacement) and text.conceal_scale == 0.1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(text.host_image),
                                  keras.ops.convert_to_numpy(image.host_image))
    assert model.program.linf_bound == 0.1
    model.program.weight.assign(np.random.default_rng(4).normal(size=model.program.weight.shape))
    path = saved_program(model, recipe, task, {}).save(tmp_path / "program")
    inputs, _ = next(iter(task.sample("test", 3, 6)))
    rebuilt = SavedProgram.load(path).build_model()
    np.testing.assert_allclose(rebuilt(list(inputs)), model(list(inputs)), atol=1e-6)


def test_shared_program_model_round_trips_through_a_keras_file(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    data, _, run = trained
    saved = SavedProgram.load(run / "program")
    model = saved.build_model()
    task = saved.matching_task(get_task(saved.task_name))
    inputs, _ = next(iter(task.sample("test", 5, 10, shuffle=False)))  # five of each part
    inputs = [x.numpy() for x in inputs]
    expected = model.predict(inputs, verbose=0)
    model.save(tmp_path / "mixed.keras")
    restored = keras.saving.load_model(tmp_path / "mixed.keras")
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, atol=1e-6)


def test_the_export_has_a_string_signature_for_text_and_image_ones_for_images(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    import tensorflow as tf

    from arnn_tf.export import export_programs, program_names, signature_names
    from arnn_tf.modalities.text import restored_vectorizer

    _, _, run = trained
    saved = SavedProgram.load(run / "program")
    names = signature_names(program_names([saved], None), [saved])
    text_name, image_name, bytes_name = names
    assert bytes_name == f"{image_name}_bytes" and "serving_default" not in names
    served = tf.saved_model.load(str(export_programs([saved], tmp_path / "export")))
    assert set(served.signatures) == set(names)
    model = saved.build_model()
    texts = ["the film was great", "awful", ""]
    vectorizer = restored_vectorizer(saved.parts[0].input_state["vectorizer"])
    ids = keras.ops.convert_to_numpy(vectorizer(texts)).astype("int32")
    answer = served.signatures[text_name](text=tf.constant(texts))
    np.testing.assert_allclose(
        answer["probabilities"].numpy(), model.part_model(0).predict(ids, verbose=0), atol=1e-5
    )
    images = np.random.default_rng(0).integers(0, 256, (2, 36, 36, 3)).astype("uint8")
    answer = served.signatures[image_name](images=tf.constant(images))
    np.testing.assert_allclose(
        answer["probabilities"].numpy(), model.part_model(1).predict(images, verbose=0), atol=1e-5
    )
    assert answer["class_names"].numpy()[0].decode() in saved.parts[1].class_names


def test_arnn_evaluate_reports_each_part(
    trained: tuple[Path, dict, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from arnn_tf.cli.main import main

    _, metrics, run = trained
    assert main(["evaluate", "--program", str(run / "program"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["accuracy_per_task"] == pytest.approx(metrics["test_accuracy_per_task"])
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_arnn_show_draws_every_parts_examples(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    from PIL import Image

    from arnn_tf.cli.main import main

    _, _, run = trained
    out = tmp_path / "mixed.png"
    argv = ["show", "--program", str(run / "program"), "--examples", "2", "--out", str(out)]
    assert main(argv) == 0
    assert Image.open(out).width > 4 * 48  # the program and two examples of each of two parts


def test_a_mixed_program_has_no_single_image_shape(trained: tuple[Path, dict, Path]) -> None:
    saved = SavedProgram.load(trained[2] / "program")
    with pytest.raises(ValueError, match="reads its inputs through input encoders"):
        saved.task_image_shape  # noqa: B018


def test_arnn_predict_asks_the_parts_that_read_the_inputs_kind(
    trained: tuple[Path, dict, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from arnn_tf.cli.main import main

    data, _, run = trained
    saved = SavedProgram.load(run / "program")
    model = saved.build_model()
    text_task = saved.matching_task(get_task(saved.task_name)).part_tasks[0]
    assert main(["predict", "--program", str(run / "program"), "--text", "good fun", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    ids = text_task.vectorizer(["good fun"]).numpy().astype("int32")
    expected = model.part_model(0).predict(ids, verbose=0)[0]
    assert record["class_name"].split("/")[-1] in saved.parts[0].class_names
    np.testing.assert_allclose(record["probabilities"], expected, atol=1e-5)
    Image.new("RGB", (36, 36), (90, 30, 200)).save(tmp_path / "square.png")
    assert main(["predict", "--program", str(run / "program"), str(tmp_path / "square.png")]) == 0
    assert "counting/" in capsys.readouterr().out
