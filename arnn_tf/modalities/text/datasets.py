"""Text-classification data sets of the TFDS catalogue as text tasks."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from arnn_tf.modalities.text.task import TextTask, text_task_from
from arnn_tf.tasks.tfds_data import prepared_splits


def tfds_text_task(builder: Any, name: str, task_name: str, level: str) -> TextTask | None:
    """A TFDS data set whose supervised keys are a Text and a ClassLabel feature (("text",
    "label") for imdb_reviews, ("description", "label") for ag_news_subset) as a `TextTask`
    tokenised by ``level``; None for a data set of another kind."""
    info = builder.info
    keys = info.supervised_keys
    if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
        return None
    if not (
        isinstance(info.features[keys[0]], tfds.features.Text)
        and isinstance(info.features[keys[1]], tfds.features.ClassLabel)
    ):
        return None
    split_names = prepared_splits(builder, name)

    def load(split: str) -> tf.data.Dataset:
        ds = builder.as_dataset(split=split_names[split], as_supervised=True, shuffle_files=False)
        return ds.map(lambda text, label: (text, tf.cast(label, tf.int32)))

    names = tuple(info.features[keys[1]].names)
    return text_task_from(task_name, names, load, level=level)  # type: ignore[arg-type]
