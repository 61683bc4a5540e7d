"""Text tasks end to end: a recipe trains a token-patch program on a tiny backbone, the saved
program reloads and exports with equal answers, and the export takes raw strings."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_text import toy_sentiment

from arnn_tf.backbones import build_backbone
from arnn_tf.export import export_programs
from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.modalities.text import TokenPatchEncoder, restored_vectorizer, text_task
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import RECIPES, RecipeError, default_recipe, require_task
from arnn_tf.runs import build_model, train
from arnn_tf.tasks.specs import get_task
from arnn_tf.training.white_box import WhiteBoxTrainer

TEXT = RECIPES["text"].replace(frame_size=None)  # the tiny backbone's own 48 x 48 frame
TEXTS = ["the film was great", "awful plot and acting", "", "a great great film", "zzz unknown"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """A text recipe trained for 40 steps on the toy sentiment task: (data, metrics, run)."""
    root = tmp_path_factory.mktemp("text")
    data, out = root / "data", root / "run"
    toy_sentiment(data)
    recipe = TEXT.replace(
        task=f"text:{data}", backbone="tiny_cnn", weights="none", steps=40, patch_size=8
    )
    return data, train(recipe, out, verbose=False), out


def test_a_text_recipe_learns_the_toy_task(trained: tuple[Path, dict, Path]) -> None:
    _, metrics, out = trained
    assert metrics["steps"] == 40 and metrics["test_accuracy"] >= 0.8
    document = json.loads((out / "program" / "program.json").read_text())
    assert document["format_version"] == 6 and document["program_layer"] == "FrameProgram"
    assert document["recipe"]["name"] == "text" and document["task"]["modality"] == "text"


def test_only_the_table_the_program_and_the_map_train(tmp_path: Path) -> None:
    toy_sentiment(tmp_path)
    task = get_task(f"text:{tmp_path}")
    recipe = TEXT.replace(backbone="tiny_cnn", weights="none", patch_size=8)
    model = build_model(recipe, task)
    assert isinstance(model.program, FrameProgram)
    assert isinstance(model.encoder, TokenPatchEncoder)
    assert {v.path for v in model.trainable_variables} == {
        "token_patch_encoder/table",
        "frame_program/W",
        "label_mapping/stored_kernel",
        "label_mapping/stored_bias",
    }
    frozen = [w.copy() for w in model.backbone.get_weights()]
    model.compile(keras.optimizers.Adam(0.05))
    model.fit(task.dataset("train", 8, repeat=True), steps_per_epoch=5, verbose=0)
    for before, after in zip(frozen, model.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_a_token_patch_lands_in_its_slot_of_the_frame_the_backbone_sees(tmp_path: Path) -> None:
    toy_sentiment(tmp_path)
    task = get_task(f"text:{tmp_path}")
    recipe = TEXT.replace(backbone="tiny_cnn", weights="none", patch_size=8)
    model = build_model(recipe, task)
    ids = tf.cast(task.vectorizer(tf.constant(["great film"])), tf.int32)
    frame = keras.ops.convert_to_numpy(model.adversarial_inputs(ids))[0]
    table = keras.ops.convert_to_numpy(model.encoder.table.value)
    second = np.tanh(table[int(ids[0, 1])]).reshape(8, 8, 3)  # W is zero: the patch itself
    np.testing.assert_allclose(frame[0:8, 8:16], second, atol=1e-6)


def test_saved_program_reloads_and_exports_with_equal_answers(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    _, _, out = trained
    saved = SavedProgram.load(out / "program")
    vectorizer = restored_vectorizer(saved.part.input_state["vectorizer"])
    ids = tf.cast(vectorizer(tf.constant(TEXTS)), tf.int32)
    expected = saved.build_model().predict(ids, verbose=0)
    rerun = SavedProgram.load(saved.save(tmp_path / "again")).build_model()
    np.testing.assert_allclose(rerun.predict(ids, verbose=0), expected, atol=1e-6)
    served = tf.saved_model.load(str(export_programs([saved], tmp_path / "export")))
    answer = served.signatures["serving_default"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)
    names = [saved.class_names[i] for i in expected.argmax(axis=1)]
    assert [n.decode() for n in answer["class_names"].numpy()] == names


def test_the_string_signature_survives_bad_text_and_serves_the_next(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    _, _, out = trained
    served = tf.saved_model.load(str(export_programs([out / "program"], tmp_path / "export")))
    predict = served.signatures["serving_default"]
    bad = predict(text=tf.constant([b"great \xff\xfe film", b"", b"awful " * 1000]))
    assert bad["probabilities"].shape == (3, 2)
    assert np.all(np.isfinite(bad["probabilities"].numpy()))
    good = predict(text=tf.constant(["the film was great"]))
    assert good["class_names"].numpy().tolist() == [b"pos"]


def test_evaluation_uses_the_programs_vectorizer(
    trained: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    data, metrics, out = trained
    saved = SavedProgram.load(out / "program")
    task = saved.matching_task(text_task(str(data)))
    assert task.vectorizer.get_vocabulary() == saved.part.input_state["vectorizer"]["vocabulary"]
    model = saved.build_model()
    model.compile()
    _, accuracy = model.evaluate(task.dataset("test", 16), verbose=0)
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    image_task = get_task("counting")
    with pytest.raises(ValueError, match=r"\(36x36x3 images, 10 classes\) does not match .*\(text"):
        saved.matching_task(image_task)


def test_text_refusals(tmp_path: Path) -> None:
    toy_sentiment(tmp_path)
    recipe = TEXT.replace(
        task=f"text:{tmp_path}", backbone="tiny_cnn", weights="none", image_size=32
    )
    with pytest.raises(ValueError, match="is text, but recipe fields image_size act on images"):
        build_model(recipe, get_task(recipe.task))
    with pytest.raises(RecipeError, match="needs its task: a folder of your text files"):
        require_task(TEXT)
    with pytest.raises(RecipeError, match="text_level"):
        TEXT.replace(text_level="sentence")
    assert default_recipe(f"text:{tmp_path}") == "text" and default_recipe(None) == "counting"


def test_frame_program_adds_its_bounded_program_and_clips() -> None:
    layer = FrameProgram(4, linf_bound=0.5)
    layer.weight.assign(np.full((4, 4, 3), 10.0, "float32"))
    canvas = np.full((2, 4, 4, 3), 0.8, "float32")
    out = keras.ops.convert_to_numpy(layer(canvas))
    np.testing.assert_allclose(out, np.ones_like(canvas), atol=1e-6)  # 0.8 + 0.5 clipped
    mask = np.zeros((4, 4, 3), "float32")
    masked = FrameProgram(4, mask=mask)
    masked.weight.assign(np.full((4, 4, 3), 10.0, "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(masked(canvas)), canvas, atol=1e-6)
    with pytest.raises(ValueError, match="mask must be 4x4x3"):
        FrameProgram(4, mask=np.ones((3, 3, 3)))


def test_text_model_round_trips_through_keras_files(tmp_path: Path) -> None:
    toy_sentiment(tmp_path / "data")
    task = get_task(f"text:{tmp_path / 'data'}")
    backbone = build_backbone("tiny_cnn", "none")
    recipe = TEXT.replace(backbone="tiny_cnn", weights="none", patch_size=8)
    model = build_model(recipe, task, backbone=backbone)
    model.program.weight.assign(np.random.default_rng(0).normal(0, 1, (48, 48, 3)))
    ids = tf.cast(task.vectorizer(tf.constant(TEXTS)), tf.int32).numpy()
    expected = model.predict(ids, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored.predict(ids, verbose=0), expected, atol=1e-6)


def test_the_command_line_trains_evaluates_predicts_and_exports_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arnn_tf.cli.main import main

    toy_sentiment(tmp_path / "data")
    run = tmp_path / "run"
    options = ["--backbone", "tiny_cnn", "--weights", "none", "--steps", "30", "--patch-size", "8",
               "--frame-size", "48"]
    assert main(["train", "--task", f"text:{tmp_path / 'data'}", *options, "--out", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["recipe"] == "text"
    assert main(["evaluate", "--program", str(run / "program"), "--json"]) == 0
    capsys.readouterr()
    (tmp_path / "lines.txt").write_text("great film\nawful acting\n")
    program = ["--program", str(run / "program")]
    argv = ["predict", *program, "--text", "the film was great", "--text-file"]
    assert main([*argv, str(tmp_path / "lines.txt"), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in records] == ["the film was great", "great film", "awful acting"]
    assert [r["class_name"] for r in records] == ["pos", "pos", "neg"]
    assert main(["predict", *program]) == 2
    assert "give image files, or --text" in capsys.readouterr().err
    assert main(["predict", *program, str(tmp_path / "lines.txt")]) == 2
    assert "is a program for text inputs, not image" in capsys.readouterr().err
    assert main(["export", *program, "--out", str(tmp_path / "export")]) == 0
    assert "signatures: serving_default, data" in capsys.readouterr().out


def test_the_control_holds_the_program_and_the_patch_table(tmp_path: Path) -> None:
    toy_sentiment(tmp_path / "data")
    recipe = TEXT.replace(
        task=f"text:{tmp_path / 'data'}", backbone="tiny_cnn", weights="none", steps=5,
        patch_size=8, freeze_program=True,
    )  # fmt: skip
    task = get_task(recipe.task)
    model = build_model(recipe, task)
    table = keras.ops.convert_to_numpy(model.encoder.table.value).copy()
    WhiteBoxTrainer().fit(model, task, recipe, verbose=False)
    assert {v.path for v in model.trainable_variables} == {
        "label_mapping/stored_kernel", "label_mapping/stored_bias"}
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.encoder.table.value), table)
    assert not np.any(keras.ops.convert_to_numpy(model.program.weight.value))


def test_black_box_training_refuses_a_text_task_at_once(tmp_path: Path) -> None:
    toy_sentiment(tmp_path)
    recipe = TEXT.replace(
        task=f"text:{tmp_path}", backbone="tiny_cnn", weights="none", patch_size=8,
        trainer="black_box",
    )  # fmt: skip
    with pytest.raises(ValueError, match="an input encoder that learns, such as a text"):
        train(recipe, tmp_path / "run", verbose=False)
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_a_text_task_can_be_held_out_for_tuning(tmp_path: Path) -> None:
    from arnn_tf.tuning.holdout import holdout_split

    toy_sentiment(tmp_path)
    task = get_task(f"text:{tmp_path}")
    held = holdout_split(task, 10, seed=0)
    assert held.modality == "text" and held.vectorizer is task.vectorizer
    assert (held.num_examples("train"), held.num_examples("test")) == (70, 10)
    parts = get_task(f"text:{tmp_path}+counting")
    held = holdout_split(parts, 100, seed=0)
    for part, held_part in zip(parts.part_tasks, held.part_tasks):
        seen = held_part.num_examples("train") + held_part.num_examples("test")
        assert held_part.num_examples("test") >= 1 and seen == part.num_examples("train")
    assert abs(held.num_examples("test") - 100) <= 1


def test_a_smaller_frame_trains_saves_and_reloads_at_its_size(tmp_path: Path) -> None:
    toy_sentiment(tmp_path / "data")
    recipe = TEXT.replace(
        task=f"text:{tmp_path / 'data'}", backbone="efficientnet_lite0", weights="none",
        steps=3, patch_size=8, frame_size=32,
    )
    train(recipe, tmp_path / "run", verbose=False)
    saved = SavedProgram.load(tmp_path / "run" / "program")
    assert saved.frame_size == 32 and saved.weight.shape == (32, 32, 3)
    assert saved.recipe["frame_size"] == 32
    model = saved.build_model()
    assert tuple(model.backbone.input_shape[1:3]) == (32, 32)
    assert model.encoder.program_mask.shape == (32, 32, 3)  # 16 slots of 8 x 8
    with pytest.raises(RecipeError, match="frame_size"):
        recipe.replace(frame_size=0)


def test_text_blended_into_a_photo_stays_near_it_and_trains(tmp_path: Path) -> None:
    from PIL import Image

    toy_sentiment(tmp_path / "data")
    host = np.random.default_rng(1).integers(0, 256, (48, 48, 3)).astype("uint8")
    Image.fromarray(host).save(tmp_path / "host.png")
    recipe = TEXT.replace(
        task=f"text:{tmp_path / 'data'}", backbone="tiny_cnn", weights="none", steps=5,
        patch_size=8, conceal=str(tmp_path / "host.png"), conceal_scale=0.1,
    )
    train(recipe, tmp_path / "run", verbose=False)
    model = SavedProgram.load(tmp_path / "run" / "program").build_model()
    assert model.encoder.conceal_scale == 0.1 and model.program.linf_bound == 0.1
    ids = tf.constant([[2, 3, 4], [5, 0, 0]], tf.int32)
    frames = keras.ops.convert_to_numpy(model.adversarial_inputs(ids))
    photo = host.astype("float32") / 127.5 - 1.0
    assert np.abs(frames - photo).max() <= 0.2 + 1e-6  # patches and program: 0.1 each at most
    assert np.abs(frames - photo).max() > 0
    with pytest.raises(RecipeError, match="conceal"):
        recipe.replace(linf_bound=0.5)


def test_a_run_says_how_many_texts_its_frame_cuts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toy_sentiment(tmp_path / "data")
    recipe = TEXT.replace(task=f"text:{tmp_path / 'data'}", backbone="tiny_cnn", weights="none",
                          steps=2, patch_size=16)  # 9 slots on the 48 frame; toy texts have 3-6 words
    train(recipe, tmp_path / "short", verbose=True)
    assert "note:" not in capsys.readouterr().out
    long = tmp_path / "long"
    for split in ("train", "test"):
        for name, word in (("neg", "awful"), ("pos", "great")):
            (long / split).mkdir(parents=True, exist_ok=True)
            (long / split / f"{name}.txt").write_text(
                "\n".join(f"{word} " + " ".join(["film"] * (5 + i % 10)) for i in range(20)) + "\n")
    train(recipe.replace(task=f"text:{long}"), tmp_path / "run", verbose=True)
    out = capsys.readouterr().out
    assert f"note: 60% of the training texts of task 'text:{long}' (40 sampled) are longer than " \
           "the 9 tokens its frame holds" in out
