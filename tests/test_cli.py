"""The `arnn` command end to end on the tiny backbone and small local data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from arnn_tf.cli.main import main


def write_png(path, value, size=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes, dark and bright squares, train and test splits."""
    root = tmp_path_factory.mktemp("folder")
    for split, count in (("train", 12), ("test", 4)):
        for i in range(count):
            write_png(root / split / "dark" / f"{i}.png", 10 + i)
            write_png(root / split / "bright" / f"{i}.png", 240 - i)
    return root


@pytest.fixture(scope="module")
def trained(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    status = main(["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
                   "--steps", "6", "--batch-size", "8", "--out", str(out), "--seed", "1"])
    assert status == 0
    return out


def test_train_writes_program_and_metrics(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in ("task", "backbone", "steps", "seconds", "images_per_second", "train_accuracy", "test_accuracy"):
        assert key in metrics
    assert metrics["steps"] == 6 and metrics["backbone"] == "tiny_cnn" and metrics["test_examples"] == 8
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["images_per_second"] > 0
    assert (trained / "program" / "program.json").exists() and (trained / "program" / "W.npy").exists()


def test_train_can_start_from_a_saved_program(trained, image_folder, tmp_path, capsys):
    start = np.load(trained / "program" / "W.npy")
    assert np.any(start)
    common = ["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
              "--steps", "2", "--batch-size", "8", "--seed", "1", "--init-program", str(trained / "program")]
    assert main([*common, "--lr", "1e-12", "--out", str(tmp_path / "next")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "next" / "program" / "W.npy"), start, atol=1e-6)
    assert json.loads((tmp_path / "next" / "metrics.json").read_text())["init_program"] == str(trained / "program")
    capsys.readouterr()
    assert main([*common, "--image-size", "12", "--out", str(tmp_path / "other")]) == 2
    assert "--image-size" in capsys.readouterr().err


def test_evaluate_reproduces_the_training_run_test_accuracy(trained, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--program", str(trained / "program"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert report["examples"] == 8
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_predict_json_matches_the_model(trained, image_folder, capsys):
    from arnn_tf.programs.saved import SavedProgram

    images = [str(image_folder / "test" / "bright" / "0.png"), str(image_folder / "test" / "dark" / "1.png")]
    capsys.readouterr()
    assert main(["predict", "--program", str(trained / "program"), *images, "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    saved = SavedProgram.load(trained / "program")
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in images])
    expected = saved.build_model().predict(pixels, verbose=0)
    assert [p["image"] for p in predictions] == images
    for prediction, row in zip(predictions, expected):
        assert prediction["class_id"] == int(row.argmax())
        assert prediction["class_name"] == ["bright", "dark"][prediction["class_id"]]
        np.testing.assert_allclose(prediction["probabilities"], row, atol=1e-5)


def test_predict_names_an_unreadable_file(trained, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["predict", "--program", str(trained / "program"), str(broken)]) == 2
    assert "broken.png" in capsys.readouterr().err


def test_classify_json_lists_top_k(tmp_path, capsys):
    image = tmp_path / "grey.png"
    write_png(image, 128, size=20)
    capsys.readouterr()
    assert main(["classify", str(image), "--backbone", "tiny_cnn", "--weights", "none", "--top", "3", "--json"]) == 0
    (entries,) = json.loads(capsys.readouterr().out)
    assert len(entries) == 3 and set(entries[0]) == {"index", "label", "probability"}
    probabilities = [e["probability"] for e in entries]
    assert probabilities == sorted(probabilities, reverse=True)


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "imagenet21k"], "unknown task"),
    (["train", "--backbone", "alexnet"], "unknown backbone"),
    (["train", "--task", "folder:/does/not/exist", "--backbone", "tiny_cnn", "--weights", "none"], "/does/not/exist"),
    (["evaluate", "--program", "/does/not/exist"], "not a saved program"),
    (["train", "--backbone", "tiny_cnn", "--weights", "none", "--conceal", "/does/not/host.png"],
     "/does/not/host.png: no such file"),
    (["train", "--backbone", "tiny_cnn", "--conceal-scale", "0.2"], "--conceal-scale needs --conceal"),
])
def test_bad_input_gives_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message.lower() in capsys.readouterr().err.lower()


def test_train_with_augmentation_records_it(image_folder, tmp_path, capsys):
    common = ["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
              "--steps", "2", "--batch-size", "8"]
    assert main([*common, "--augment", "flip,crop", "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["augment"] == "flip,crop"
    with pytest.raises(SystemExit) as exit_info:
        main([*common, "--augment", "flip,rotate", "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == 2
    assert "unknown augmentation rotate; choose from flip, crop" in capsys.readouterr().err


def test_train_with_warmup_records_it_and_refuses_it_without_cosine(image_folder, tmp_path, capsys):
    common = ["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
              "--steps", "3", "--batch-size", "8", "--warmup-steps", "2"]
    assert main([*common, "--lr-schedule", "cosine", "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["warmup_steps"] == 2 and metrics["steps"] == 3
    capsys.readouterr()
    assert main([*common, "--recipe", "paper", "--out", str(tmp_path / "paper")]) == 2
    assert "--warmup-steps needs the cosine schedule" in capsys.readouterr().err
    assert not (tmp_path / "paper").exists()  # refused before the run folder or its logs are made


def test_console_script_lists_backbones_without_tensorflow_start_up_lines():
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "arnn_tf.cli.main", "backbones"], capture_output=True,
                            text=True, timeout=120, check=True, env=environment)
    assert "efficientnet_lite0" in result.stdout and "inception_v3" in result.stdout
    assert result.stdout.splitlines()[0].split() == ["name", "input", "offline", "description"]
    assert result.stderr == ""


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_answer_without_importing_tensorflow(flag):
    script = ("import sys\nfrom arnn_tf.cli.main import main\n"
              f"try:\n    main([{flag!r}])\nexcept SystemExit:\n    pass\n"
              "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
    assert ("arnn-tf " if flag == "--version" else "usage: arnn") in result.stdout


def test_every_command_help_answers_without_importing_tensorflow():
    from arnn_tf.cli.commands import COMMANDS

    script = ("import sys\nfrom arnn_tf.cli.main import main\nfrom arnn_tf.cli.commands import COMMANDS\n"
              "for name in COMMANDS:\n    try:\n        main([name, '--help'])\n"
              "    except SystemExit:\n        pass\n"
              "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
    assert all(f"usage: arnn {name} " in result.stdout for name in COMMANDS)


def test_bench_reports_throughput_and_memory(capsys):
    capsys.readouterr()
    assert main(["bench", "--backbone", "tiny_cnn", "--weights", "none", "--batch-size", "4", "--steps", "3",
                 "--warmup", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images_per_second"] > 0 and result["peak_memory_mb"] > 0
    assert result["steps"] == 3 and result["batch_size"] == 4 and result["jit_compile"] is False


def test_multi_task_training_saves_its_parts(image_folder, tmp_path):
    from arnn_tf.programs.saved import SavedProgram

    other = tmp_path / "other"
    for split in ("train", "test"):
        for name, value in (("a", 50), ("b", 120), ("c", 200)):
            write_png(other / split / name / "0.png", value)
    task = f"folder:{image_folder}+folder:{other}"
    assert main(["train", "--task", task, "--backbone", "tiny_cnn", "--weights", "none", "--steps", "2",
                 "--batch-size", "4", "--out", str(tmp_path / "run")]) == 0
    saved = SavedProgram.load(tmp_path / "run" / "program")
    assert [part.name for part in saved.parts] == [f"folder:{image_folder}", f"folder:{other}"]
    assert saved.parts[1].class_names == ["a", "b", "c"] and saved.joined == ()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["test_accuracy_per_task"]) == {f"folder:{image_folder}", f"folder:{other}"}


def test_a_program_written_as_a_code_trains_black_box_on_parts_and_warm_starts_only_as_one(
        image_folder, tmp_path, capsys):
    from arnn_tf.programs.saved import SavedProgram

    task = f"folder:{image_folder}+shuffled:folder:{image_folder}"
    common = ["train", "--task", task, "--backbone", "tiny_cnn", "--weights", "none",
              "--steps", "3", "--batch-size", "4", "--black-box", "--map-warmup-steps", "0"]
    assert main([*common, "--code-dimension", "24", "--out", str(tmp_path / "run")]) == 0
    saved = SavedProgram.load(tmp_path / "run" / "program")
    assert saved.weight.shape == (24,) and np.any(saved.weight)
    assert saved.program_config["code_dimension"] == 24
    assert "code_grid" not in saved.program_config  # the default grid's config is as before
    capsys.readouterr()
    assert main([*common, "--init-program", str(tmp_path / "run" / "program"),
                 "--out", str(tmp_path / "frame")]) == 2
    assert "--code-dimension 24 (here None)" in capsys.readouterr().err


def test_a_code_on_a_finer_grid_trains_saves_evaluates_and_exports(image_folder, tmp_path):
    from arnn_tf.programs.saved import SavedProgram

    run = tmp_path / "run"
    assert main(["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn",
                 "--weights", "none", "--steps", "2", "--batch-size", "4",
                 "--code-dimension", "10", "--code-grid", "4", "--out", str(run)]) == 0
    saved = SavedProgram.load(run / "program")
    assert saved.program_config["code_grid"] == 4 and saved.weight.shape == (10,)
    assert main(["evaluate", "--program", str(run / "program"),
                 "--task", f"folder:{image_folder}"]) == 0
    assert main(["export", "--program", str(run / "program"), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "1" / "saved_model.pb").is_file()


def test_parts_on_their_own_regions_train_and_reload(image_folder, tmp_path):
    from arnn_tf.programs.saved import SavedProgram

    run = tmp_path / "run"
    task = f"folder:{image_folder}+shuffled:folder:{image_folder}"
    assert main(["train", "--task", task, "--backbone", "tiny_cnn", "--weights", "none",
                 "--steps", "2", "--batch-size", "4", "--part-regions", "--out", str(run)]) == 0
    saved = SavedProgram.load(run / "program")
    assert saved.program_config["part_regions"] is True
    assert main(["evaluate", "--program", str(run / "program"), "--task", task]) == 0


def test_train_concealed_in_a_host_photo(image_folder, tmp_path, capsys):
    import keras

    from arnn_tf.modalities.image.files import read_image
    from arnn_tf.modalities.image.placement import ConcealedPlacement
    from arnn_tf.programs.saved import SavedProgram

    host = tmp_path / "host.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 40, 3)).astype(np.uint8)).save(host)
    out = tmp_path / "run"
    assert main(["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
                 "--steps", "3", "--batch-size", "8", "--out", str(out), "--conceal", str(host),
                 "--conceal-scale", "0.05"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["conceal"] == str(host) and metrics["conceal_scale"] == 0.05
    saved = SavedProgram.load(out / "program")
    photo = read_image(host, (saved.frame_size,) * 2, 3)
    np.testing.assert_array_equal(saved.part.encoder_weights[0], photo)
    model = saved.build_model()
    assert isinstance(model.encoder, ConcealedPlacement) and model.encoder.conceal_scale == 0.05
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(image_folder.glob("test/*/*.png"))])
    x_adv = keras.ops.convert_to_numpy(model.adversarial_inputs(images))
    assert np.abs(x_adv - (photo / 127.5 - 1.0)).max() <= 0.1 + 1e-6
    capsys.readouterr()
    assert main(["evaluate", "--program", str(out / "program"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_train_refuses_a_corrupt_host_photo_or_placement_options(tmp_path, capsys):
    corrupt = tmp_path / "host.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    train = ["train", "--backbone", "tiny_cnn", "--weights", "none", "--out", str(tmp_path / "run")]
    assert main([*train, "--conceal", str(corrupt)]) == 2
    assert "host.png: not a readable image" in capsys.readouterr().err
    write_png(corrupt, 90)
    assert main([*train, "--conceal", str(corrupt), "--border-width", "4"]) == 2
    assert "takes no placement fields" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_flip_average_is_stored_by_train_and_overridden_by_evaluate_and_predict(image_folder, tmp_path, capsys):
    import dataclasses

    from arnn_tf.programs.saved import SavedProgram

    out = tmp_path / "run"
    assert main(["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
                 "--steps", "3", "--batch-size", "8", "--seed", "1", "--flip-average", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["flip_average"] is True
    saved = SavedProgram.load(out / "program")
    assert saved.flip_average
    capsys.readouterr()
    for flags, expected in (([], True), (["--no-flip-average"], False)):
        assert main(["evaluate", "--program", str(out / "program"), "--json", *flags]) == 0
        assert json.loads(capsys.readouterr().out)["flip_average"] is expected
    half = np.zeros((16, 16, 3), np.uint8)
    half[:, 11:] = 255  # not its own mirror image
    Image.fromarray(half).save(tmp_path / "half.png")
    plain = dataclasses.replace(saved, flip_average=False).build_model()
    single = plain.predict(half[None], verbose=0)[0]
    averaged = (single + plain.predict(half[None, :, ::-1], verbose=0)[0]) / 2
    assert not np.allclose(single, averaged, atol=1e-4)
    for flags, expected in (([], averaged), (["--no-flip-average"], single)):
        assert main(["predict", "--program", str(out / "program"), str(tmp_path / "half.png"), "--json", *flags]) == 0
        np.testing.assert_allclose(json.loads(capsys.readouterr().out)[0]["probabilities"], expected, atol=1e-5)


def test_rerunning_a_finished_run_completes_and_keeps_its_outputs(image_folder, tmp_path, capsys):
    argv = ["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
            "--steps", "3", "--batch-size", "8", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    first = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert main(argv) == 0
    again = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "resumed from step 3" in capsys.readouterr().out
    assert again["steps"] == 3 and again["resumed_from"] == 3 and again["train_accuracy"] is None
    assert again["test_accuracy"] == first["test_accuracy"]
    # the training time is the checkpoint's (kept across processes), not this rerun's zero
    assert again["seconds"] == 0 and 0 < again["total_seconds"] <= first["total_seconds"]


def test_a_run_killed_in_its_final_evaluation_completes_when_rerun(image_folder, tmp_path, monkeypatch):
    import arnn_tf.runs

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    argv = ["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
            "--steps", "3", "--batch-size", "8", "--out", str(tmp_path / "run")]
    with monkeypatch.context() as patch:
        patch.setattr(arnn_tf.runs, "test_results", killed)
        assert main(argv) == 130
    assert not (tmp_path / "run" / "program").exists()
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and (tmp_path / "run" / "program" / "W.npy").exists()


def test_evaluate_says_how_to_point_at_the_data_when_the_training_folder_is_gone(trained, tmp_path, capsys):
    import dataclasses

    from arnn_tf.programs.saved import SavedProgram

    moved = dataclasses.replace(SavedProgram.load(trained / "program"), task_name="folder:/gone/data")
    moved.save(tmp_path / "program")
    assert main(["evaluate", "--program", str(tmp_path / "program")]) == 2
    error = capsys.readouterr().err.strip()
    assert "/gone/data" in error and "--task folder:PATH" in error and len(error.splitlines()) == 1


def test_train_on_a_folder_of_photos_of_any_size_uses_the_folder_recipe(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 2)):
        for label in ("cats", "dogs"):
            for i in range(count):
                (tmp_path / "photos" / split / label).mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, (451, 300, 3)).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / "photos" / split / label / f"{i}.jpg")
    assert main(["train", "--task", f"folder:{tmp_path / 'photos'}", "--backbone", "tiny_cnn",
                 "--weights", "none", "--steps", "20", "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["recipe"] == "folder" and metrics["steps"] == 20 and not metrics["augment"]
    from arnn_tf.programs.saved import SavedProgram

    saved = SavedProgram.load(tmp_path / "run" / "program")
    placement = saved.build_model().encoders[0]
    assert placement.image_size == (34, 34)  # 160/224 of the tiny network's 48 frame


def test_train_on_a_folder_with_a_truncated_test_image_is_a_one_line_error(image_folder, tmp_path, capsys):
    import shutil

    from bad_images import BAD_FILES

    folder = tmp_path / "data"
    shutil.copytree(image_folder, folder)
    (folder / "test" / "dark" / "truncated.png").write_bytes(BAD_FILES["truncated.png"])
    assert main(["train", "--task", f"folder:{folder}", "--backbone", "tiny_cnn", "--weights", "none",
                 "--steps", "1", "--batch-size", "4", "--out", str(tmp_path / "run")]) == 2
    output = capsys.readouterr()
    error = output.err.strip()
    assert error.startswith(f"arnn train: error: {folder / 'test' / 'dark' / 'truncated.png'}: ")
    assert len(error.splitlines()) == 1 and "step" not in output.out  # before training


def test_show_draws_the_program_and_what_the_network_sees(trained, tmp_path, capsys):
    from arnn_tf.programs.saved import SavedProgram

    out = tmp_path / "picture.png"
    assert main(["show", "--program", str(trained / "program"), "--examples", "2", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    with Image.open(out) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    frame = SavedProgram.load(trained / "program").frame_size
    assert picture.size == (3 * frame + 2 * 8, frame + 18)
    from arnn_tf.models.pictures import to_pixels

    program = SavedProgram.load(trained / "program").build_model().program.program()
    np.testing.assert_array_equal(pixels[:frame, :frame], to_pixels(np.asarray(program)))


def test_train_black_box_counts_its_queries_and_reruns_from_the_saved_recipe(image_folder, tmp_path, capsys):
    common = ["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
              "--steps", "3", "--batch-size", "4"]
    out = tmp_path / "black"
    assert main([*common, "--black-box", "--directions", "2", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["trainer"], metrics["directions"], metrics["zo_resolution"],
            metrics["program_lr_scale"]) == ("black_box", 2, 16, 0.01)
    # by default W is held for the first of the 3 steps (half, rounded down): 4 frames
    assert metrics["map_warmup_steps"] == 1 and metrics["stopped_by_queries"] is False
    assert metrics["queries"] == 4 + 2 * 4 * (2 + 1)
    printed = capsys.readouterr().out
    assert "queries 28 - " in printed and "after 28 queries; program saved to" in printed
    assert not np.array_equal(np.load(out / "program" / "W.npy"), 0)
    assert main(["train", "--recipe", str(out / "program"), "--steps", "4", "--max-queries", "20",
                 "--out", str(out)]) == 0  # the saved recipe is black-box: one more step, 12 frames
    again = json.loads((out / "metrics.json").read_text())
    assert (again["steps"], again["resumed_from"], again["queries"]) == (4, 3, 12)


def test_train_black_box_counts_a_frequency_maps_sample_as_queries(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", f"folder:{image_folder}", "--backbone", "tiny_cnn", "--weights", "none",
                 "--steps", "1", "--batch-size", "4", "--black-box", "--directions", "2",
                 "--label-map", "frequency", "--out", str(out)]) == 0
    assert "\nlabel map: bright <- " in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["queries"] == 24 + 4 * 3  # 24 images


def test_library_errors_name_the_options_the_user_typed(tmp_path, capsys):
    from arnn_tf.cli.main import _command_parser, build_parser, in_option_words

    argv = ["train", "--backbone", "tiny_cnn", "--weights", "none", "--image-size", "500",
            "--steps", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "use a smaller --image-size or a larger --frame-size" in error
    assert len(error.splitlines()) == 1
    train = _command_parser(build_parser(), "train")
    message = "recipe field 'warmup_steps' needs the cosine schedule (lr_schedule 'cosine')"
    assert in_option_words(message, train) == (
        "--warmup-steps needs the cosine schedule (--lr-schedule 'cosine')")
