"""Tasks read through tensorflow-datasets: TFDS catalogue data sets and image folders."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from arnn_tf.modalities.image.files import image_read_error_in, open_image, resized_pixels
from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.tasks.tfds_data import pick_test_split, prepared_splits

_FOLDER_TEST_SPLITS = ("test", "val", "validation")
MAX_TASK_SIDE = 256
"""A folder's images are read at the first training image's size scaled down (its shape kept)
so that no side exceeds this: the model resizes them to at most its frame anyway, and camera
photos at their full size would fill memory a batch at a time."""


def tfds_image_task(builder: Any, name: str, task_name: str) -> ImageTask | None:
    """A TFDS data set of fixed-size images with `(image, label)` supervised keys (an Image and
    a ClassLabel feature) as an `ImageTask`; None for a data set of another kind.

    Downloads and prepares the data set on first use. The test split is "test", else
    "validation". Data sets with variable image sizes are refused: use `folder:PATH`, which
    resizes, or a fixed-size variant of the data set.
    """
    info = builder.info
    if info.supervised_keys != ("image", "label") or not (
        isinstance(info.features["image"], tfds.features.Image)
        and isinstance(info.features["label"], tfds.features.ClassLabel)
    ):
        return None
    shape = tuple(info.features["image"].shape)
    if len(shape) != 3 or None in shape or shape[-1] not in (1, 3):
        raise ValueError(
            f"TFDS data set {name!r} has images of shape {shape}; tasks need a fixed "
            "(height, width, 1 or 3). Use a fixed-size variant of the data set, or export the "
            "images and use 'folder:PATH' (which resizes)."
        )
    split_names = prepared_splits(builder, name)

    def load(split: str) -> tf.data.Dataset:
        ds = builder.as_dataset(split=split_names[split], as_supervised=True, shuffle_files=False)
        return ds.map(
            lambda image, label: (tf.ensure_shape(image, shape), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    return ImageTask(
        name=task_name,
        image_shape=shape,
        class_names=tuple(info.features["label"].names),
        _load=load,
    )


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""The files an image folder's class folders are read for (`tfds.ImageFolder`'s)."""


def _check_classes(
    path: str, root: str, split_names: dict[str, str], class_names: list[str]
) -> None:
    """Refuses, before anything trains, a folder of fewer than two classes or with a class
    that has no images in one of its splits, naming the folder and the class."""
    if len(class_names) < 2:
        raise ValueError(
            f"Image folder {path!r} has {len(class_names)} class ({', '.join(class_names)}); "
            "a task needs at least two class folders"
        )
    for split in split_names.values():
        for name in class_names:
            folder = os.path.join(root, split, name)
            files = tf.io.gfile.listdir(folder) if tf.io.gfile.isdir(folder) else []
            if not any(f.lower().endswith(IMAGE_SUFFIXES) for f in files):
                raise ValueError(
                    f"Image folder {path!r}: class {name!r} has no images under {split!r}; "
                    "every class needs training and test images"
                )


def _decode_image(data: bytes, path: bytes, height: int, width: int) -> np.ndarray:
    """Decode an image file to RGB uint8 [height, width, 3], resizing if its size differs.

    PIL (rather than `tf.io.decode_image`) so that a corrupt, truncated or oversized file raises
    an `ImageReadError` naming the file instead of an anonymous op error deep in the pipeline.
    """
    return resized_pixels(open_image(io.BytesIO(data), path.decode()), (height, width))


def _readable(data: np.ndarray, paths: np.ndarray) -> np.bool_:
    """True once every file of a batch decodes in full; else `ImageReadError` naming one."""
    for encoded, path in zip(data, paths):
        open_image(io.BytesIO(encoded), path.decode()).close()
    return np.bool_(True)


def _check_files(raw: Any, splits: tuple[str, ...]) -> None:
    """Decodes every image of ``splits`` once (batches in parallel), so that a corrupt,
    truncated or oversized file is refused by name (`ImageReadError`) before anything trains,
    not hours into a run."""
    for split in splits:
        checked = raw(split).batch(256).map(
            lambda data, names, _: tf.numpy_function(_readable, [data, names], tf.bool),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        try:
            for _ in checked:
                pass
        except tf.errors.OpError as error:
            found = image_read_error_in(error)
            if found is None:
                raise
            raise found from None


def _task_shape(train: tf.data.Dataset) -> tuple[int, int, int]:
    """A folder task's image shape: its first training image's size, at most `MAX_TASK_SIDE`."""
    data, name, _ = next(iter(train.take(1)))
    width, height = open_image(io.BytesIO(data.numpy()), name.numpy().decode()).size
    scale = min(1.0, MAX_TASK_SIDE / max(width, height))
    return max(1, round(height * scale)), max(1, round(width * scale)), 3


def folder_task(path: str, *, task_name: str | None = None) -> ImageTask:
    """Images in `path/<split>/<class>/<image>.{png,jpg,jpeg}`, read with `tfds.ImageFolder`.

    Splits: "train", and "test" (else "val" or "validation"). Class names are the sorted class
    folder names across splits. Every image is decoded to 3 channels (grayscale is replicated)
    and resized (bilinear, aspect ratio not kept) to the size of the first train image (scaled
    down to at most `MAX_TASK_SIDE` a side), so the task has one static `image_shape`. Every
    file is decoded once here: a corrupt, truncated or oversized one (see
    `arnn_tf.modalities.image.files`) raises `ImageReadError` naming it, and so does one that
    breaks later (a TF op error holding it, which
    `arnn_tf.modalities.image.files.image_read_error_in` recovers).
    """
    task_name = task_name or f"folder:{path}"
    root = os.path.expanduser(path)
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"Image folder {path!r} does not exist")
    builder = tfds.ImageFolder(root)
    available = list(builder.info.splits.keys())
    if "train" not in available:
        raise ValueError(f"Image folder {path!r} has no 'train' split (found {sorted(available)})")
    test_split = pick_test_split(available, _FOLDER_TEST_SPLITS, f"Image folder {path!r}")
    if builder.info.splits["train"].num_examples == 0:
        raise ValueError(f"Image folder {path!r} has no .png/.jpg/.jpeg images under 'train'")
    split_names = {"train": "train", "test": test_split}
    _check_classes(path, root, split_names, builder.info.features["label"].names)

    def raw(split: str) -> tf.data.Dataset:
        """(encoded bytes, file name, label) without decoding, so errors can name the file."""
        ds = builder.as_dataset(
            split=split_names[split],
            decoders={"image": tfds.decode.SkipDecoding()},
            shuffle_files=False,
        )
        return ds.map(lambda ex: (ex["image"], ex["image/filename"], ex["label"]))

    _check_files(raw, ("train", "test"))
    shape = _task_shape(raw("train"))
    height, width, _ = shape

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
