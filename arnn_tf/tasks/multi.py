"""Several tasks as one: a single program trained on mixed batches of several data sets.

Each part keeps its own classes (class ids are offset part by part, so every part maps to
its own, disjoint ImageNet classes through the label map), images are brought to one shape
(centred zero padding to the largest height and width, grayscale repeated to RGB), and the
training split interleaves the parts at random.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from arnn_tf.modalities.image.task import ImageTask
from arnn_tf.tasks.base import TaskPart


def combine_tasks(tasks: Sequence[ImageTask], seed: int = 0) -> ImageTask:
    """One task whose classes are the parts' classes, named "PART/CLASS", in part order."""
    if len(tasks) < 2:
        raise ValueError("combining tasks needs at least two")
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
