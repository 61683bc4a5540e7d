"""`ImageTask`: a labelled image data set served as a batched `tf.data` pipeline."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import tensorflow as tf

from arnn_tf.modalities.image.placement import images_description
from arnn_tf.settings import CROP_PADDING, checked_augmentations
from arnn_tf.tasks.base import SPLITS, TaskPart, count_examples, shuffle_buffer


@dataclasses.dataclass(frozen=True)
class ImageTask:
    """A target task for reprogramming: images at their native size plus integer labels.

    The private `_load` callable builds the unbatched, decoded data set of one split
    (uint8 images with static shape `image_shape`, int32 labels); `dataset` adds the
    shared caching / shuffling / batching so every task gets the same pipeline.
    """

    modality = "image"
    """What the task's examples are; the model built for it follows (`arnn_tf.runs`)."""

    name: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    _load: Callable[[str], tf.data.Dataset] = dataclasses.field(repr=False, compare=False)
    parts: tuple[TaskPart, ...] = ()
    """For data sets joined as one image task (`arnn_tf.programs.combined`), each one's
    classes; empty otherwise."""

    @property
    def input_state(self) -> None:
        """Image tasks need no input preprocessing saved with a program (text tasks do)."""
        return None

    @property
    def part_tasks(self) -> tuple["ImageTask"]:
        """The task itself: a model reads it through one input encoder."""
        return (self,)

    def with_input_state(self, input_state: None) -> "ImageTask":
        """The task as a program saved with ``input_state`` reads it: unchanged for images."""
        return self

    @property
    def input_description(self) -> str:
        """What the task's examples are, as a program's input encoder names what it reads."""
        return images_description(self.image_shape)

    def input_notes(self, encoders: Sequence[Any]) -> list[str]:
        """What a run should know about how ``encoders`` read the task: nothing for images
        (a placement that cannot hold them refuses them when it is built)."""
        return []

    @property
    def num_classes(self) -> int:
        """Number of target classes (the size of the label mapping)."""
        return len(self.class_names)

    def dataset(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        repeat: bool = False,
        seed: int = 0,
        drop_remainder: bool = False,
        cache: bool = True,
        augment: tuple[str, ...] = (),
    ) -> tf.data.Dataset:
        """Batches of `(images uint8 [B, h, w, c], labels int32 [B])` for `split`.

        Images are decoded once and cached in memory by the returned data set, so reuse
        the same object across epochs (or pass `repeat=True`). ``cache=False`` is for a
        single pass, where a cache would never be used (and tf.data warns when a reader
        stops before the end of the data and leaves it half-filled). Shuffling is seeded
        and reshuffles every epoch. No resizing or normalisation: the Keras model does that.

        ``augment`` names augmentations (`arnn_tf.settings.AUGMENTATIONS`) applied to every
        image after the cache, each image drawing its own random choice from ``seed`` and its
        position in the stream, so the same call gives the same images in the same order (a
        resumed run replays them).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        checked_augmentations(augment)
        decoded = self.examples(split)
        ds = decoded.cache() if cache else decoded
        if shuffle:
            ds = ds.shuffle(shuffle_buffer(decoded), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        if augment:
            ds = ds.enumerate().map(
                lambda index, example: _augmented(example, index, seed, augment),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        return ds.prefetch(tf.data.AUTOTUNE)

    def sample(
        self, split: str, count: int, batch_size: int, *, shuffle: bool = True, seed: int = 0
    ) -> tf.data.Dataset:
        """Batches of one fixed choice of ``count`` examples of ``split``: seeded random, or the
        first ``count`` with ``shuffle=False``.

        For work that passes over the same few examples again (the frequency label map every
        epoch, TensorBoard's example images): the chosen examples are cached after the first
        full pass, so later passes decode nothing and see the same images. Unlike a partial read
        of `dataset`, reading it to its end leaves no half-filled cache behind.
        """
        if count < 1 or batch_size < 1:
            raise ValueError(f"count and batch_size must be positive, got {count} and {batch_size}")
        decoded = self.examples(split)
        if shuffle:
            decoded = decoded.shuffle(
                shuffle_buffer(decoded), seed=seed, reshuffle_each_iteration=False
            )
        return decoded.take(count).cache().batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def num_examples(self, split: str) -> int:
        """Number of examples in `split` (counted by iterating when tf.data cannot tell)."""
        return count_examples(self.examples(split))

    def examples(self, split: str) -> tf.data.Dataset:
        """The unbatched, decoded examples of ``split`` (a validated split name), in their
        stored order: what tasks built on this one (combined, shuffled, held out) start from."""
        if split not in SPLITS:
            raise ValueError(
                f"Unknown split {split!r} for task {self.name!r}; expected one of {SPLITS}"
            )
        return self._load(split)


def _augmented(
    example: tuple[tf.Tensor, tf.Tensor], index: tf.Tensor, seed: int, augment: tuple[str, ...]
) -> tuple[tf.Tensor, tf.Tensor]:
    """One training example after ``augment``, with stateless random ops keyed by
    (``seed``, ``index``) so the result does not depend on how tf.data schedules the map."""
    image, label = example
    key = tf.stack([tf.cast(seed, tf.int64), index])
    if "flip" in augment:
        image = tf.image.stateless_random_flip_left_right(image, seed=key)
    if "crop" in augment:
        height, width, channels = image.shape
        padded = tf.pad(image, [[CROP_PADDING, CROP_PADDING], [CROP_PADDING, CROP_PADDING], [0, 0]])
        image = tf.image.stateless_random_crop(padded, (height, width, channels), seed=key + [0, 1])
    return image, label
