"""Tasks read through tensorflow-datasets: TFDS catalogue data sets and image folders."""

from __future__ import annotations

import io
import os
import socket
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from arnn_tf.modalities.image.files import open_image, resized_pixels
from arnn_tf.modalities.image.task import ImageTask

_TFDS_TEST_SPLITS = ("test", "validation")
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
"""Where TFDS fetches prepared data sets (and many sources) from; probed before a download."""
_FOLDER_TEST_SPLITS = ("test", "val", "validation")


def _pick_test_split(available: list[str], candidates: tuple[str, ...], source: str) -> str:
    """The first of `candidates` present in `available`, or a ValueError listing what was found."""
    for candidate in candidates:
        if candidate in available:
            return candidate
    raise ValueError(
        f"{source} has no test split: looked for {list(candidates)}, found {sorted(available)}"
    )


def unreachable_download_host(timeout: float = 5.0) -> str | None:
    """None when `DOWNLOAD_HOST` accepts a connection, else why not.

    Asked before a download because TFDS itself retries a failing one for minutes: offline,
    a task should fail at once with a message that says what to use instead.
    """
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
    except OSError as error:
        return f"no connection to {DOWNLOAD_HOST[0]}: {error}"
    return None


def tfds_task(
    name: str,
    *,
    data_dir: str | None = None,
    task_name: str | None = None,
    text_level: str = "word",
) -> Any:
    """A TFDS classification data set: fixed-size images with `(image, label)` supervised keys
    (a `ImageTask`), or texts with `(text, label)` ones (imdb_reviews, ag_news_subset, ...: a
    `arnn_tf.modalities.text.TextTask` tokenised by ``text_level``).

    Downloads and prepares the data set on first use (into `data_dir`, TFDS's default when None).
    The test split is "test", else "validation". Data sets with variable image sizes are refused:
    use `folder:PATH`, which resizes, or a fixed-size variant of the data set.
    """
    task_name = task_name or f"tfds:{name}"
    builder = tfds.builder(name, data_dir=data_dir)
    info = builder.info
    if _is_text_classification(info):
        return _tfds_text_task(builder, name, task_name, text_level)
    if info.supervised_keys != ("image", "label") or not (
        isinstance(info.features["image"], tfds.features.Image)
        and isinstance(info.features["label"], tfds.features.ClassLabel)
    ):
        raise ValueError(
            f"TFDS data set {name!r} is not an image- or text-classification data set with "
            f"supervised keys ('image', 'label') or ('text', 'label') (an Image or Text and a "
            f"ClassLabel feature); "
            f"its supervised keys are {info.supervised_keys}"
        )
    shape = tuple(info.features["image"].shape)
    if len(shape) != 3 or None in shape or shape[-1] not in (1, 3):
        raise ValueError(
            f"TFDS data set {name!r} has images of shape {shape}; tasks need a fixed "
            "(height, width, 1 or 3). Use a fixed-size variant of the data set, or export the "
            "images and use 'folder:PATH' (which resizes)."
        )
    split_names = _prepared_splits(builder, name)

    def load(split: str) -> tf.data.Dataset:
        ds = builder.as_dataset(split=split_names[split], as_supervised=True, shuffle_files=False)
        return ds.map(
            lambda image, label: (tf.ensure_shape(image, shape), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    return ImageTask(
        name=task_name,
        image_shape=shape,
        class_names=tuple(builder.info.features["label"].names),
        _load=load,
    )


def _is_text_classification(info: Any) -> bool:
    """Whether a data set's supervised keys are a Text feature and a ClassLabel feature
    (("text", "label") for imdb_reviews, ("description", "label") for ag_news_subset)."""
    keys = info.supervised_keys
    if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
        return False
    return isinstance(info.features[keys[0]], tfds.features.Text) and isinstance(
        info.features[keys[1]], tfds.features.ClassLabel
    )


def _prepared_splits(builder: Any, name: str) -> dict[str, str]:
    """Prepares ``builder``'s data set (downloading it, or failing at once offline) and names
    its "train" and "test" splits."""
    if not builder.is_prepared():
        unreachable = unreachable_download_host()
        if unreachable is not None:
            raise ValueError(
                f"TFDS data set {name!r} is not prepared in {builder.data_dir} and cannot be "
                f"downloaded from here ({unreachable}); prepare it on a machine with internet "
                "and use its data directory, or use a folder copy ('folder:PATH' for images, "
                "'text:PATH' for texts)"
            )
    builder.download_and_prepare()
    # Splits are only known once prepared; "test" is the usual name when none are recorded.
    available = list(builder.info.splits.keys())
    test_split = (
        _pick_test_split(available, _TFDS_TEST_SPLITS, f"TFDS data set {name!r}")
        if available
        else "test"
    )
    return {"train": "train", "test": test_split}


def _tfds_text_task(builder: Any, name: str, task_name: str, level: str) -> Any:
    """A TFDS text-classification data set as a `arnn_tf.modalities.text.TextTask`."""
    from arnn_tf.modalities.text.task import (
        text_task_from,  # Keras' text preprocessing, only when used
    )

    split_names = _prepared_splits(builder, name)

    def load(split: str) -> tf.data.Dataset:
        ds = builder.as_dataset(split=split_names[split], as_supervised=True, shuffle_files=False)
        return ds.map(lambda text, label: (text, tf.cast(label, tf.int32)))

    names = tuple(builder.info.features[builder.info.supervised_keys[1]].names)
    return text_task_from(task_name, names, load, level=level)  # type: ignore[arg-type]


def _decode_image(data: bytes, path: bytes, height: int, width: int) -> np.ndarray:
    """Decode an image file to RGB uint8 [height, width, 3], resizing if its size differs.

    PIL (rather than `tf.io.decode_image`) so that a corrupt, truncated or oversized file raises
    an `ImageReadError` naming the file instead of an anonymous op error deep in the pipeline.
    """
    return resized_pixels(open_image(io.BytesIO(data), path.decode()), (height, width))


def folder_task(path: str, *, task_name: str | None = None) -> ImageTask:
    """Images in `path/<split>/<class>/<image>.{png,jpg,jpeg}`, read with `tfds.ImageFolder`.

    Splits: "train", and "test" (else "val" or "validation"). Class names are the sorted class
    folder names across splits. Every image is decoded to 3 channels (grayscale is replicated)
    and resized (bilinear, aspect ratio not kept) to the size of the first train image, so the
    task has one static `image_shape`. A corrupt, truncated or oversized file (see
    `arnn_tf.modalities.image.files`) fails iteration with a TF op error holding an
    `ImageReadError` that names it, which `arnn_tf.modalities.image.files.image_read_error_in`
    recovers; a bad first train image fails here.
    """
    task_name = task_name or f"folder:{path}"
    root = os.path.expanduser(path)
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"Image folder {path!r} does not exist")
    builder = tfds.ImageFolder(root)
    available = list(builder.info.splits.keys())
    if "train" not in available:
        raise ValueError(f"Image folder {path!r} has no 'train' split (found {sorted(available)})")
    test_split = _pick_test_split(available, _FOLDER_TEST_SPLITS, f"Image folder {path!r}")
    if builder.info.splits["train"].num_examples == 0:
        raise ValueError(f"Image folder {path!r} has no .png/.jpg/.jpeg images under 'train'")
    split_names = {"train": "train", "test": test_split}

    def raw(split: str) -> tf.data.Dataset:
        """(encoded bytes, file name, label) without decoding, so errors can name the file."""
        ds = builder.as_dataset(
            split=split_names[split],
            decoders={"image": tfds.decode.SkipDecoding()},
            shuffle_files=False,
        )
        return ds.map(lambda ex: (ex["image"], ex["image/filename"], ex["label"]))

    first_bytes, first_path, _ = next(iter(raw("train").take(1)))
    width, height = open_image(io.BytesIO(first_bytes.numpy()), first_path.numpy().decode()).size
    shape = (height, width, 3)

    def decode(
        data: tf.Tensor, filename: tf.Tensor, label: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.numpy_function(
            lambda d, f: _decode_image(d, f, height, width),
            [data, filename],
            tf.uint8,
            stateful=False,
        )
        return tf.ensure_shape(image, shape), tf.cast(label, tf.int32)

    def load(split: str) -> tf.data.Dataset:
        return raw(split).map(decode, num_parallel_calls=tf.data.AUTOTUNE)

    return ImageTask(
        name=task_name,
        image_shape=shape,
        class_names=tuple(builder.info.features["label"].names),
        _load=load,
    )
