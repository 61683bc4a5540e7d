"""The `Task` protocol every task implements (image, text, parts of several), and what
all tasks share: the splits, the parts of a task of several data sets, shuffle buffers."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, Sequence

import tensorflow as tf

SPLITS: tuple[str, ...] = ("train", "test")
"""The splits every task serves."""

MAX_SHUFFLE_BUFFER = 10_000
"""Upper bound on the shuffle buffer (data sets at most this big get a full shuffle)."""


@dataclasses.dataclass(frozen=True)
class TaskPart:
    """One data set inside a combined task: its classes are ids ``first_class`` onwards."""

    name: str
    first_class: int
    num_classes: int


class Task(Protocol):
    """A target task for reprogramming: labelled examples of one modality, or parts of several,
    served as batched `tf.data` pipelines of ``(inputs, int32 labels)``."""

    modality: str
    """What the task's examples are ("image", "text", "mixed"); the model built for it follows."""
    name: str

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def parts(self) -> tuple[TaskPart, ...]:
        """The data sets of a task of several; empty for one."""

    @property
    def part_tasks(self) -> tuple["Task", ...]:
        """The tasks whose inputs a model reads, one input encoder and label map each: the
        task itself for a task of one input, each part for a `arnn_tf.tasks.parts.MultiPartTask`."""

    @property
    def input_state(self) -> Any:
        """Input preprocessing a saved program keeps (a text task's vectorizer), or None."""

    @property
    def input_description(self) -> str:
        """What the task's examples are, as a program's input encoder names what it reads."""

    def input_notes(self, encoders: Sequence[Any]) -> list[str]:
        """What a run should know about how ``encoders`` read the task."""

    def dataset(self, split: str, batch_size: int, **options: Any) -> tf.data.Dataset:
        """Batches of ``split``; options: shuffle, repeat, seed, drop_remainder, cache, augment."""

    def sample(self, split: str, count: int, batch_size: int, **options: Any) -> tf.data.Dataset:
        """Batches of one fixed choice of ``count`` examples of ``split``."""

    def num_examples(self, split: str) -> int: ...


def shuffle_buffer(ds: tf.data.Dataset) -> int:
    """A full shuffle for data sets up to `MAX_SHUFFLE_BUFFER` examples, that many otherwise."""
    return max(1, min(count_examples(ds), MAX_SHUFFLE_BUFFER))


def count_examples(ds: tf.data.Dataset) -> int:
    """Number of elements of a finite data set, iterating it only when tf.data cannot tell."""
    n = int(ds.cardinality())
    if n < 0:  # unknown cardinality, e.g. generator-backed (mock) data
        n = int(ds.reduce(0, lambda count, _: count + 1))
    return n
