"""Image files from the command line: bombs, truncated and garbage files give one-line errors naming them."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from bad_images import BAD_FILES, GARBAGE, encoded, noise, png_bomb

from arnn_tf.backbones import build_backbone
from arnn_tf.cli.main import main
from arnn_tf.modalities.image import files as images
from arnn_tf.modalities.image.files import (
    ImageReadError,
    image_read_error_in,
    open_image,
    read_image,
    read_images,
)
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.programs.saved import SavedProgram

MESSAGES = {
    "bomb.png": "bomb.png: the image claims 10000000000 pixels, more than the 67108864 allowed "
                "(a corrupt file or a decompression bomb)",
    "bomb.jpg": "bomb.jpg: the image claims 3600000000 pixels, more than the 67108864 allowed",
    "truncated.png": "truncated.png: not a readable image (image file is truncated",
    "truncated.jpg": "truncated.jpg: not a readable image (image file is truncated",
    "garbage.png": "garbage.png: not a readable image (unknown image format)",
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    for name, data in BAD_FILES.items():
        (root / name).write_bytes(data)
    return {name: root / name for name in BAD_FILES}


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 3-class program for 10 x 10 RGB images on the tiny backbone."""
    model = build_reprogrammed_model(build_backbone("tiny_cnn", None, seed=3), (10, 10, 3), 3, seed=1)
    saved = SavedProgram.from_model(model, backbone_name="tiny_cnn", weights=None, seed=3, task_name="toy",
                                    class_names=["a", "b", "c"])
    path = tmp_path_factory.mktemp("program") / "program"
    saved.save(path)
    return path


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_give_one_line_errors_naming_them(bad_files: dict[str, Path], name: str) -> None:
    with pytest.raises(ImageReadError) as error:
        read_image(bad_files[name], (8, 8))
    message = str(error.value)
    assert message.startswith(str(bad_files[name])) and MESSAGES[name] in message
    assert "\n" not in message and isinstance(error.value, ValueError)


def test_the_size_limit_is_checked_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    # Just over our limit, and over PIL's warning limit (which must neither warn nor get through).
    for width, height in [(8193, 8192), (10_000, 10_000)]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ImageReadError, match=f"x.png: the image claims {width} x {height} pixels, "
                                                     "more than the 67108864 allowed"):
                open_image(io.BytesIO(png_bomb(width, height)), "x.png")
        assert not caught
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    assert open_image(io.BytesIO(encoded(noise(10, 10), "PNG")), "small.png").size == (10, 10)
    with pytest.raises(ImageReadError, match="big.png: the image claims 11 x 10 pixels, more than the 100"):
        open_image(io.BytesIO(encoded(noise(10, 11), "PNG")), "big.png")


def test_good_files_of_any_size_and_mode_are_resized(tmp_path: Path) -> None:
    pixels = noise(12, 20)
    (tmp_path / "photo.jpg").write_bytes(encoded(pixels, "JPEG"))
    (tmp_path / "gray.png").write_bytes(encoded(pixels[..., :1], "PNG"))
    assert read_images([tmp_path / "photo.jpg", tmp_path / "gray.png"], (6, 10)).shape == (2, 6, 10, 3)
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png", (12, 20), 1), pixels[..., :1])
    with pytest.raises(ImageReadError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png", (6, 10))


def test_errors_raised_in_a_tf_data_pipeline_are_recovered() -> None:
    def decode(data: np.ndarray) -> np.ndarray:
        return np.asarray(open_image(io.BytesIO(data), "data/b/7.png"))

    ds = tf.data.Dataset.from_tensors(tf.constant(GARBAGE))
    ds = ds.map(lambda data: tf.numpy_function(decode, [data], tf.uint8))
    with pytest.raises(tf.errors.OpError) as error:
        list(ds)
    assert str(image_read_error_in(error.value)) == "data/b/7.png: not a readable image (unknown image format)"
    with pytest.raises(tf.errors.OpError) as other:
        tf.debugging.assert_positive(tf.constant([-1]))
    assert image_read_error_in(other.value) is None


@pytest.mark.parametrize("command", ["predict", "classify"])
def test_cli_refuses_each_bad_file_in_one_line(command: str, program: Path, bad_files: dict[str, Path],
                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(encoded(noise(10, 10), "PNG"))
    model = (["--program", str(program)] if command == "predict"
             else ["--backbone", "tiny_cnn", "--weights", "none"])
    for name, path in bad_files.items():
        capsys.readouterr()
        assert main([command, *model, str(good), str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"arnn {command}: error: {path}") and MESSAGES[name] in err
        assert len(err.strip().splitlines()) == 1
    assert main([command, *model, str(good)]) == 0
