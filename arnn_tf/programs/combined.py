"""Image data sets joined as one image task: how programs of formats 1 to 4 trained on
several data sets (``A+B``) read them.

Such a program has one input encoder and one label map for all the parts' classes (class
ids offset part by part); its images were brought to one shape (centred zero padding to the
largest height and width, grayscale repeated to RGB). Programs trained now give each part
its own encoder and map (`arnn_tf.tasks.parts.MultiPartTask`); this module lets the older
ones read the same data sets.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.tasks.base import TaskPart


def combine_tasks(tasks: Sequence[ImageTask], seed: int = 0) -> ImageTask:
    """One task whose classes are the parts' classes, named "PART/CLASS", in part order; its
    training split interleaves the parts at random."""
    if len(tasks) < 2 or any(task.modality != "image" for task in tasks):
        raise ValueError("combining tasks as one image task needs at least two image tasks")
    height = max(task.image_shape[0] for task in tasks)
    width = max(task.image_shape[1] for task in tasks)
    offsets = [sum(task.num_classes for task in tasks[:i]) for i in range(len(tasks))]

    def common_form(task: ImageTask, offset: int, split: str) -> tf.data.Dataset:
        def convert(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            if task.image_shape[2] == 1:
                image = tf.image.grayscale_to_rgb(image)
            image = tf.image.resize_with_crop_or_pad(image, height, width)
            return image, tf.cast(label, tf.int32) + offset

        return task.examples(split).map(convert, num_parallel_calls=tf.data.AUTOTUNE)

    def load(split: str) -> tf.data.Dataset:
        parts = [common_form(task, offset, split) for task, offset in zip(tasks, offsets)]
        if split == "train":
            return tf.data.Dataset.sample_from_datasets(parts, seed=seed)
        combined = parts[0]
        for part in parts[1:]:
            combined = combined.concatenate(part)
        return combined

    return ImageTask(
        name="+".join(task.name for task in tasks),
        image_shape=(height, width, 3),
        class_names=tuple(f"{task.name}/{name}" for task in tasks for name in task.class_names),
        _load=load,
        parts=tuple(
            TaskPart(task.name, offset, task.num_classes) for task, offset in zip(tasks, offsets)
        ),
    )
