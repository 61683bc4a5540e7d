"""TF Serving export: same answers as Keras when loaded without arnn-tf, bad input refused,
one shared backbone."""

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from bad_images import BAD_FILES, png_bomb
from PIL import Image

from arnn_tf.backbones import build_backbone
from arnn_tf.cli.commands.export import run as export_command
from arnn_tf.cli.main import build_parser
from arnn_tf.cli.main import main as arnn_main
from arnn_tf.export import (
    WARMUP_FILE,
    ExportError,
    export_programs,
    prediction_log_bytes,
    program_names,
    sanitize_name,
    signature_names,
)
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.tasks.base import TaskPart

LOADER = Path(__file__).with_name("model_server_loader.py")
NO_SERVING_API = "tensorflow-serving-api (the serving extra) is not installed"


def _program(backbone, shape, classes, task_name, seed):
    """A random-W program on ``backbone`` (tiny_cnn, seed 3) and its Keras model."""
    model = build_reprogrammed_model(backbone, shape, classes, label_map="random", seed=seed)
    model.program.weight.assign(np.random.default_rng(seed).normal(size=model.program.weight.shape))
    saved = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3,
                                    task_name=task_name,
                                    class_names=[f"class {k}" for k in range(classes)])
    return saved, model


def _multi_task_program(backbone):
    """A random-W program for a combined task "gray+rgb" (classes gray/0..2, rgb/0..1).

    Each class maps to two ImageNet classes.
    """
    model = build_reprogrammed_model(backbone, (10, 10, 3), 5, label_map="random:2", seed=5)
    model.program.weight.assign(np.random.default_rng(5).normal(size=model.program.weight.shape))
    saved = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3,
                                    task_name="gray+rgb",
                                    class_names=["gray/0", "gray/1", "gray/2", "rgb/0", "rgb/1"],
                                    joined=(TaskPart("gray", 0, 3), TaskPart("rgb", 3, 2)))
    return saved, model


def _renormalised(probabilities, part):
    """The Keras model's probabilities restricted to one part's classes, summing to one."""
    restricted = probabilities[:, part.first_class : part.first_class + part.num_classes]
    return restricted / restricted.sum(axis=1, keepdims=True)


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One-program, two-program (at most 50000 pixels) and multi-task exports.

    Also the Keras models and test images.
    """
    root = tmp_path_factory.mktemp("export")
    backbone = build_backbone("tiny_cnn", None, seed=3)
    color, color_model = _program(backbone, (10, 10, 3), 3, "Toy Task", seed=1)
    gray, gray_model = _program(backbone, (12, 12, 1), 4, "digits", seed=2)
    combined, combined_model = _multi_task_program(backbone)
    color.save(root / "color")
    combined.save(root / "combined")
    rng = np.random.default_rng(7)
    images = {"toy_task": rng.integers(0, 256, (5, 10, 10, 3)).astype("uint8"),
              "digits": rng.integers(0, 256, (3, 12, 12, 1)).astype("uint8")}
    expected = {"toy_task": color_model.predict(images["toy_task"], verbose=0),
                "digits": gray_model.predict(images["digits"], verbose=0),
                "gray_rgb": combined_model.predict(images["toy_task"], verbose=0)}
    for part in combined.joined:
        expected[f"gray_rgb_{part.name}"] = _renormalised(expected["gray_rgb"], part)
    return {
        "root": root,
        "single": export_programs([root / "color"], root / "single"),
        "multi": export_programs([color, gray], root / "multi", version=7, max_pixels=50_000),
        "parts": export_programs([root / "combined"], root / "parts"),
        "images": images,
        "expected": expected,
        "programs": {"toy_task": color, "digits": gray, "gray_rgb": combined},
    }


@pytest.fixture(scope="module")
def served(exported):
    """Runs tests/model_server_loader.py on good and bad requests, in a fresh Python.

    That Python never imports arnn_tf, as the model server would not.
    """
    root, images = exported["root"], exported["images"]
    cases = []

    def case(key, export, signature, name, value):
        path = root / f"{key}.npy"
        np.save(path, value, allow_pickle=value.dtype == object)
        cases.append({"key": key, "export": str(export), "signature": signature,
                      "inputs": {name: str(path)}})

    color, gray = images["toy_task"], images["digits"]
    color_png = np.array([_png(i) for i in color], dtype=object)
    huge = np.array([_png(np.zeros((300, 300, 3), "uint8"))], dtype=object)
    case("single_pixels", exported["single"], "serving_default", "images", color)
    case("single_bytes", exported["single"], "predict_bytes", "image_bytes", color_png)
    case("bad_shape", exported["single"], "serving_default", "images", color[:, :8])
    case("bad_dtype", exported["single"], "serving_default", "images", color.astype("float32"))
    def encoded(*files):
        return np.array(files, dtype=object)

    case("corrupt", exported["single"], "predict_bytes", "image_bytes", encoded(b"not an image"))
    case("truncated", exported["single"], "predict_bytes", "image_bytes",
         encoded(color_png[0][:40]))
    case("bomb", exported["single"], "predict_bytes", "image_bytes", encoded(png_bomb()))
    case("after_bad", exported["single"], "predict_bytes", "image_bytes", color_png)
    case("multi_color", exported["multi"], "toy_task", "images", color)
    case("multi_gray", exported["multi"], "digits", "images", gray)
    case("multi_gray_bytes", exported["multi"], "digits_bytes", "image_bytes",
         np.array([_png(i) for i in gray], dtype=object))
    case("too_big", exported["multi"], "toy_task_bytes", "image_bytes", huge)
    case("multi_after_bad", exported["multi"], "toy_task_bytes", "image_bytes", color_png)
    case("part_whole", exported["parts"], "serving_default", "images", color)
    case("part_gray", exported["parts"], "gray_rgb_gray", "images", color)
    case("part_rgb_bytes", exported["parts"], "gray_rgb_rgb_bytes", "image_bytes", color_png)
    (root / "cases.json").write_text(json.dumps(cases))
    subprocess.run([sys.executable, str(LOADER), str(root / "cases.json"), str(root / "out.npz")],
                   check=True, timeout=300)
    out = dict(np.load(root / "out.npz"))
    return out, json.loads(str(out["errors"]))


def test_layout_is_tf_serving(exported):
    single = exported["single"]
    assert single.name == "1" and exported["multi"].name == "7"
    assert (single / "saved_model.pb").is_file()
    assert (single / "variables" / "variables.index").is_file()
    assert (single / "assets.extra" / WARMUP_FILE).is_file()
    assert [p.name for p in single.parent.iterdir()] == ["1"]  # no staging folder left behind


def test_fresh_process_matches_keras(served, exported):
    out, errors = served
    assert not out["imported_arnn_tf"]
    expected = exported["expected"]
    for key, program in [("single_pixels", "toy_task"), ("single_bytes", "toy_task"),
                         ("after_bad", "toy_task"), ("multi_color", "toy_task"),
                         ("multi_gray", "digits"), ("multi_gray_bytes", "digits"),
                         ("multi_after_bad", "toy_task"), ("part_whole", "gray_rgb"),
                         ("part_gray", "gray_rgb_gray"), ("part_rgb_bytes", "gray_rgb_rgb")]:
        for loader in ("tf1", "tf2"):
            assert f"{key}/{loader}" not in errors, errors.get(f"{key}/{loader}")
            np.testing.assert_allclose(out[f"{key}/{loader}"], expected[program], atol=1e-4,
                                       err_msg=key)


def test_bad_input_is_refused_clearly(served):
    _, errors = served
    # The model server's path (TF1 session, no Python-side checks) gets the in-graph messages.
    assert "images must be uint8 [batch, 10, 10, 3]" in errors["bad_shape/tf1"]
    assert "uint8" in errors["bad_dtype/tf1"] and "float" in errors["bad_dtype/tf1"]
    assert "image_bytes[0]: not a JPEG or PNG image" in errors["corrupt/tf1"]
    assert "Invalid PNG" in errors["truncated/tf1"]
    assert ("image_bytes[0] is 300 x 300 pixels (height x width); "
            "images may have at most 50000 pixels" in errors["too_big/tf1"])
    assert "image_bytes[0] is 100000 x 100000 pixels" in errors["bomb/tf1"]
    for key in ("bad_shape", "bad_dtype", "corrupt", "truncated", "bomb"):
        assert f"{key}/tf2" in errors


def test_matches_arnn_predict(exported, tmp_path, capsys):
    files = []
    for k, pixels in enumerate(exported["images"]["toy_task"]):
        files.append(tmp_path / f"{k}.png")
        files[-1].write_bytes(_png(pixels))
    program = str(exported["root"] / "color")
    assert arnn_main(["predict", "--program", program, *map(str, files), "--json"]) == 0
    cli = np.array([p["probabilities"] for p in json.loads(capsys.readouterr().out)])
    loaded = tf.saved_model.load(str(exported["single"]))
    encoded = tf.constant([f.read_bytes() for f in files])
    served = loaded.signatures["predict_bytes"](image_bytes=encoded)
    np.testing.assert_allclose(served["probabilities"].numpy(), cli, atol=1e-4)
    assert [n.decode() for n in served["class_names"].numpy()] == [
        f"class {i}" for i in cli.argmax(1)]


def test_bytes_signature_resizes_jpeg_and_limits_pixels(exported, tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (40, 30, 3)).astype("uint8")
    loaded = tf.saved_model.load(str(exported["single"]))
    encoded = tf.constant([_jpeg(photo), _png(photo)])
    result = loaded.signatures["predict_bytes"](image_bytes=encoded)
    assert result["probabilities"].shape == (2, 3) and result["class_ids"].dtype == tf.int64
    small = export_programs([exported["programs"]["toy_task"]], tmp_path / "small", max_pixels=1000)
    limited = tf.saved_model.load(str(small)).signatures["predict_bytes"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 1000 pixels"):
        limited(image_bytes=tf.constant([_png(photo)]))
    small_photo = tf.constant([_png(photo[:20, :20])])
    assert limited(image_bytes=small_photo)["probabilities"].shape == (1, 3)


BAD_BYTES_ERRORS = {
    "bomb.png": r"image_bytes\[1\] is 100000 x 100000 pixels \(height x width\); "
                r"images may have at most",
    "bomb.jpg": r"image_bytes\[1\] is 60000 x 60000 pixels \(height x width\); "
                r"images may have at most",
    "truncated.png": "Invalid PNG data",
    "truncated.jpg": "Invalid JPEG data",
    "garbage.png": r"image_bytes\[1\]: not a JPEG or PNG image",
}


@pytest.mark.parametrize("bad_name", sorted(BAD_BYTES_ERRORS))
def test_bytes_signature_refuses_bad_bytes_and_serves_the_next_request(exported, bad_name):
    signature = tf.saved_model.load(str(exported["single"])).signatures["predict_bytes"]
    good = [_png(i) for i in exported["images"]["toy_task"][:2]]
    with pytest.raises(tf.errors.InvalidArgumentError, match=BAD_BYTES_ERRORS[bad_name]):
        signature(image_bytes=tf.constant([good[0], BAD_FILES[bad_name]]))
    served = signature(image_bytes=tf.constant(good))["probabilities"].numpy()
    np.testing.assert_allclose(served, exported["expected"]["toy_task"][:2], atol=1e-4)


def test_multi_program_export_shares_one_backbone(exported):
    single = tf.train.list_variables(str(exported["single"] / "variables" / "variables"))
    multi = tf.train.list_variables(str(exported["multi"] / "variables" / "variables"))
    backbone = [name for name, _ in multi if name.startswith("backbone_variables/")]
    assert len(backbone) == len(build_backbone("tiny_cnn", None, seed=3).variables)
    assert len(multi) == len(single) + 2  # the second program adds only its W and label-map indices
    assert sorted(name for name, shape in multi if shape == [48, 48, 3]) == [
        "program_variables/0/.ATTRIBUTES/VARIABLE_VALUE",
        "program_variables/2/.ATTRIBUTES/VARIABLE_VALUE"]
    signatures = tf.saved_model.load(str(exported["multi"])).signatures
    assert sorted(signatures) == ["digits", "digits_bytes", "toy_task", "toy_task_bytes"]


def test_multi_task_program_has_one_signature_pair_per_part(exported):
    loaded = tf.saved_model.load(str(exported["parts"]))
    assert sorted(loaded.signatures) == sorted([
        "serving_default", "predict_bytes", "gray_rgb", "gray_rgb_bytes",
        "gray_rgb_gray", "gray_rgb_gray_bytes", "gray_rgb_rgb", "gray_rgb_rgb_bytes"])
    images = exported["images"]["toy_task"]
    png = tf.constant([_png(i) for i in images])
    for part, names in (("gray", ["0", "1", "2"]), ("rgb", ["0", "1"])):
        expected = exported["expected"][f"gray_rgb_{part}"]
        for result in (loaded.signatures[f"gray_rgb_{part}"](images=tf.constant(images)),
                       loaded.signatures[f"gray_rgb_{part}_bytes"](image_bytes=png)):
            probabilities = result["probabilities"].numpy()
            assert probabilities.shape == (len(images), len(names))
            np.testing.assert_allclose(probabilities, expected, atol=1e-5)
            np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
            np.testing.assert_array_equal(result["class_ids"].numpy(), expected.argmax(axis=1))
            assert [n.decode() for n in result["class_names"].numpy()] == [
                names[i] for i in expected.argmax(axis=1)]
    whole = loaded.signatures["gray_rgb"](images=tf.constant(images))
    np.testing.assert_allclose(whole["probabilities"].numpy(), exported["expected"]["gray_rgb"],
                               atol=1e-5)
    names = exported["programs"]["gray_rgb"].class_names  # the whole program keeps "PART/" names
    assert [n.decode() for n in whole["class_names"].numpy()] == [
        names[i] for i in exported["expected"]["gray_rgb"].argmax(axis=1)]


def test_part_signatures_share_the_programs_variables(exported):
    single = tf.train.list_variables(str(exported["single"] / "variables" / "variables"))
    parts = tf.train.list_variables(str(exported["parts"] / "variables" / "variables"))
    assert len(parts) == len(single)  # backbone, one W and one label map: nothing added per part
    assert [shape for name, shape in parts
            if name.startswith("program_variables/")] == [[48, 48, 3], [10]]


@pytest.mark.parametrize("export", ["multi", "parts"])
def test_warmup_records_are_prediction_logs_for_every_signature(exported, export):
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2",
                                             reason=NO_SERVING_API)
    path = exported[export] / "assets.extra" / WARMUP_FILE
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(str(path))]
    loaded = tf.saved_model.load(str(exported[export]))
    assert sorted(log.predict_log.request.model_spec.signature_name
                  for log in logs) == sorted(loaded.signatures)
    for log in logs:
        request = log.predict_log.request
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        signature = loaded.signatures[request.model_spec.signature_name]
        assert signature(**inputs)["probabilities"].shape[0] == 1


def test_prediction_log_encoding_matches_the_real_protos():
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2",
                                             reason=NO_SERVING_API)
    value = np.arange(6, dtype="uint8").reshape(1, 2, 3)
    expected = prediction_log_pb2.PredictionLog()
    expected.predict_log.request.model_spec.name = "m" * 200  # long enough for multi-byte lengths
    expected.predict_log.request.model_spec.signature_name = "sig"
    expected.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto(value))
    encoded = prediction_log_bytes("m" * 200, "sig", {"x": value})
    parsed = prediction_log_pb2.PredictionLog.FromString(encoded)
    assert parsed == expected


def test_refusals(exported, tmp_path):
    toy = exported["programs"]["toy_task"]
    other, _ = _program(build_backbone("tiny_cnn", None, seed=4), (10, 10, 3), 3, "other", seed=1)
    other.backbone.seed = 4
    with pytest.raises(ExportError, match="share one backbone"):
        export_programs([toy, other], tmp_path / "x")
    with pytest.raises(ExportError, match="names must differ") as raised:
        export_programs([toy, toy], tmp_path / "x")
    assert "give each program its own name" in str(raised.value)
    with pytest.raises(ExportError, match="already exists") as raised:
        export_programs([toy], exported["single"].parent, version=1)
    assert "pick another version number (the next free one is 2)" in str(raised.value)
    with pytest.raises(ExportError, match="clash"):
        export_programs([toy], tmp_path / "x", names=["serving_default"])
    assert not (tmp_path / "x").exists()
    assert sanitize_name("tfds:Fashion-MNIST") == "tfds_fashion_mnist"
    assert sanitize_name("3d") == "p_3d"


def test_library_errors_name_values_not_flags(exported, tmp_path):
    """Library callers have no command line: refusals name the values and fixes, not flags."""
    toy = exported["programs"]["toy_task"]
    refusals = [lambda: export_programs([toy, toy], tmp_path / "x"),
                lambda: export_programs([toy], exported["single"].parent, version=1),
                lambda: export_programs([toy, toy], tmp_path / "x", names=["a"]),
                lambda: export_programs([toy], tmp_path / "x", version=0),
                lambda: export_programs([toy], tmp_path / "x", max_pixels=0),
                lambda: export_programs([], tmp_path / "x")]
    for refuse in refusals:
        with pytest.raises(ExportError) as raised:
            refuse()
        assert "--" not in str(raised.value), raised.value


def test_export_command(exported, tmp_path, capsys):
    args = build_parser().parse_args(["export", "--program", str(exported["root"] / "color"),
                                      "--out", str(tmp_path / "m"), "--name", "squares",
                                      "--max-pixels", "5000"])
    report = export_command(args)
    assert report == {"path": str(tmp_path / "m" / "1"),
                      "signatures": ["serving_default", "predict_bytes", "squares",
                                     "squares_bytes"]}
    assert "exported to" in capsys.readouterr().out
    assert export_command(args)["path"] == str(tmp_path / "m" / "2")


def test_arnn_export_lists_the_part_signatures(exported, tmp_path, capsys):
    assert arnn_main(["export", "--program", str(exported["root"] / "combined"),
                      "--out", str(tmp_path / "m"), "--name", "Mixed"]) == 0
    assert capsys.readouterr().out.strip().endswith(
        "signatures: serving_default, predict_bytes, mixed, mixed_bytes, mixed_gray, "
        "mixed_gray_bytes, mixed_rgb, mixed_rgb_bytes")
    assert sorted(tf.saved_model.load(str(tmp_path / "m" / "1")).signatures) == sorted(
        ["serving_default", "predict_bytes", "mixed", "mixed_bytes", "mixed_gray",
         "mixed_gray_bytes", "mixed_rgb", "mixed_rgb_bytes"])


def test_part_signatures_that_clash_are_refused(exported, tmp_path):
    combined = exported["programs"]["gray_rgb"]
    with pytest.raises(ExportError, match="clash"):
        export_programs([combined, exported["programs"]["toy_task"]], tmp_path / "x",
                        names=["a", "a_gray"])
    assert not (tmp_path / "x").exists()


def test_folder_tasks_are_named_by_their_folders():
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=3), (10, 10, 3), 5,
                                     seed=5)
    saved = SavedProgram.from_model(
        model, backbone_name="tiny_cnn", weights=None, seed=3,
        task_name="folder:/data/mnist+folder:/data/cifar10",
        class_names=["mnist/0", "mnist/1", "mnist/2", "cifar10/0", "cifar10/1"],
        joined=(TaskPart("folder:/data/mnist", 0, 3), TaskPart("folder:/data/cifar10", 3, 2)))
    names = program_names([saved], None)
    assert names == ["mnist_cifar10"]
    assert signature_names(names, [saved]) == [
        "serving_default", "predict_bytes", "mnist_cifar10", "mnist_cifar10_bytes",
        "mnist_cifar10_mnist", "mnist_cifar10_mnist_bytes", "mnist_cifar10_cifar10",
        "mnist_cifar10_cifar10_bytes"]


def test_concealed_program_exports_with_its_host_image(tmp_path):
    backbone = build_backbone("tiny_cnn", None, seed=3)
    host = np.random.default_rng(2).integers(0, 256, (48, 48, 3)).astype("uint8")
    model = build_reprogrammed_model(backbone, (10, 10, 3), 3, host_image=host, conceal_scale=0.1)
    model.program.weight.assign(np.random.default_rng(3).normal(size=model.program.weight.shape))
    saved = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3,
                                    task_name="hidden", class_names=["a", "b", "c"])
    images = np.random.default_rng(4).integers(0, 256, (4, 10, 10, 3)).astype("uint8")
    loaded = tf.saved_model.load(str(export_programs([saved], tmp_path / "m")))
    result = loaded.signatures["serving_default"](images=tf.constant(images))
    served = result["probabilities"].numpy()
    np.testing.assert_allclose(served, model.predict(images, verbose=0), atol=1e-5)


def test_flip_average_program_exports_averaging_signatures(tmp_path):
    saved, model = _multi_task_program(build_backbone("tiny_cnn", None, seed=3))
    images = np.random.default_rng(6).integers(0, 256, (4, 10, 10, 3)).astype("uint8")
    views = [model.predict(images, verbose=0), model.predict(images[:, :, ::-1], verbose=0)]
    averaging = dataclasses.replace(saved, flip_average=True)
    signatures = tf.saved_model.load(str(export_programs([averaging], tmp_path / "m"))).signatures
    served = signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(served, (views[0] + views[1]) / 2, atol=1e-5)
    for part in saved.joined:
        expected = (_renormalised(views[0], part) + _renormalised(views[1], part)) / 2
        result = signatures[f"gray_rgb_{part.name}"](images=tf.constant(images))
        served = result["probabilities"].numpy()
        np.testing.assert_allclose(served, expected, atol=1e-5)
