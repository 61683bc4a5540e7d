"""`MultiPartTask`: several data sets trained as one, on one frame program.

Each part keeps its own input (images of its own shape, or text) and its own classes; the
model (`arnn_tf.models.reprogrammed.ReprogrammedModel`) runs each through its own input encoder
and label map, with one frame program shared by all. A batch holds a slot per part, part i's
examples in slot i (some slots may be empty), and the labels of all slots in part order,
offset part by part, so the answers of one step line up with one label vector.

A shuffled split is drawn by a seeded sampler, each example's part at random (uniform over
the parts, or in proportion to their sizes), so a step costs the same whatever the number of
parts, and the same seed replays the same draw (a resumed run skips the batches it has
trained on). An unshuffled split gives every part's examples once, in part order.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import tensorflow as tf

from arnn_tf.settings import PART_SAMPLING
from arnn_tf.tasks.base import TaskPart


@dataclasses.dataclass(frozen=True)
class MultiPartTask:
    """Part tasks (each an `ImageTask` or `arnn_tf.modalities.text.TextTask`) served together:
    batches of ``((inputs of part 0, ..., of part k), labels of all)``."""

    modality = "mixed"
    input_state = None
    """Each part keeps its own input state (a text part's vectorizer)."""

    name: str
    part_tasks: tuple[Any, ...]
    sampling: str = "uniform"

    def __post_init__(self) -> None:
        if len(self.part_tasks) < 2:
            raise ValueError("a task of several parts needs at least two part tasks")
        if self.sampling not in PART_SAMPLING:
            raise ValueError(
                f"unknown part sampling {self.sampling!r}; known: {', '.join(PART_SAMPLING)}"
            )

    @property
    def parts(self) -> tuple[TaskPart, ...]:
        """Each part's name, first class id and number of classes."""
        tasks = self.part_tasks
        offsets = [sum(t.num_classes for t in tasks[:i]) for i in range(len(tasks))]
        return tuple(TaskPart(t.name, o, t.num_classes) for t, o in zip(tasks, offsets))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(f"{t.name}/{name}" for t in self.part_tasks for name in t.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_description(self) -> str:
        """What the parts' examples are, one after the other."""
        return "parts of " + " and ".join(t.input_description for t in self.part_tasks)

    def input_notes(self, encoders: Sequence[Any]) -> list[str]:
        """Each part's notes on how its encoder (``encoders``, in part order) reads it."""
        return [n for t, e in zip(self.part_tasks, encoders) for n in t.input_notes([e])]

    def num_examples(self, split: str) -> int:
        """All parts' examples of ``split`` together."""
        return sum(t.num_examples(split) for t in self.part_tasks)

    def dataset(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_remainder: bool = False,
        **options: Any,
    ) -> tf.data.Dataset:
        """Batches of ``split``: drawn across the parts by the seeded sampler when
        ``shuffle``, else every part's examples in part order. The other options (repeat,
        cache, augment) are each part's ``dataset``'s; evaluate a part on its own (`part_tasks`)."""
        carrier = _Carrier(
            self.parts,
            [t.dataset(split, 1, shuffle=shuffle, seed=seed, **options) for t in self.part_tasks],
        )
        if shuffle:
            examples = tf.data.Dataset.choose_from_datasets(
                carrier.streams, self._choices(split, seed), stop_on_empty_dataset=False
            )
        else:
            examples = _concatenated(carrier.streams)
        return carrier.batched(examples, batch_size, drop_remainder)

    def sample(self, split: str, count: int, batch_size: int, **options: Any) -> tf.data.Dataset:
        """``count`` fixed examples of each part, in part order, in batches as `dataset`'s."""
        carrier = _Carrier(
            self.parts, [t.sample(split, count, 1, **options) for t in self.part_tasks]
        )
        return carrier.batched(_concatenated(carrier.streams), batch_size, drop_remainder=False)

    def _choices(self, split: str, seed: int) -> tf.data.Dataset:
        """Each example's part, the n-th drawn from ``(seed, n)`` alone (stateless)."""
        weights = [1.0] * len(self.part_tasks)
        if self.sampling == "proportional":
            weights = [float(t.num_examples(split)) for t in self.part_tasks]
        logits = tf.math.log([weights])

        def part_of(index: tf.Tensor) -> tf.Tensor:
            pair = tf.stack([tf.constant(seed, tf.int64), index])
            draw = tf.random.stateless_categorical(logits, 1, pair)
            return draw[0, 0]

        return tf.data.Dataset.counter().map(part_of)


class _Carrier:
    """Every part's examples in one form, so one stream can hold them all: the part's index,
    its input flattened into a row of one dtype (padded to the widest part's), and its label
    offset to its classes' ids. A batch is then split back into each part's rows, in part
    order, with their labels in the same order. Building it takes a few operations a part,
    not a few a pair of parts, so a hundred parts build as fast as they train."""

    def __init__(self, parts: Sequence[TaskPart], batches_of_one: Sequence[tf.data.Dataset]):
        self.specs = [stream.element_spec[0] for stream in batches_of_one]
        if any(not spec.shape[1:].is_fully_defined() for spec in self.specs):
            raise ValueError("every part's inputs must have one fixed shape to be batched together")
        self.sizes = [int(spec.shape[1:].num_elements()) for spec in self.specs]
        floats = any(spec.dtype.is_floating for spec in self.specs)
        self.dtype = tf.float32 if floats else tf.int32
        width = max(self.sizes)

        def tagged(part: int, first_class: int) -> Any:
            def tag(inputs: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, ...]:
                row = tf.reshape(tf.cast(inputs, self.dtype), [-1])
                row = tf.pad(row, [[0, width - self.sizes[part]]])
                return tf.constant(part), row, tf.cast(labels[0], tf.int32) + first_class

            return tag

        self.streams = [
            stream.map(tagged(i, part.first_class))
            for i, (part, stream) in enumerate(zip(parts, batches_of_one))
        ]

    def batched(
        self, examples: tf.data.Dataset, batch_size: int, drop_remainder: bool
    ) -> tf.data.Dataset:
        """``examples`` in batches of ``batch_size``, each split into the parts' rows."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")

        def split(parts: tf.Tensor, rows: tf.Tensor, labels: tf.Tensor) -> tuple[Any, tf.Tensor]:
            inputs, ordered = [], []
            for i, (spec, size) in enumerate(zip(self.specs, self.sizes)):
                mine = tf.equal(parts, i)
                values = tf.boolean_mask(rows, mine)[:, :size]
                inputs.append(tf.cast(tf.reshape(values, [-1, *spec.shape[1:]]), spec.dtype))
                ordered.append(tf.boolean_mask(labels, mine))
            return tuple(inputs), tf.concat(ordered, 0)

        batches = examples.batch(batch_size, drop_remainder=drop_remainder)
        return batches.map(split, num_parallel_calls=tf.data.AUTOTUNE)


def _concatenated(streams: Sequence[tf.data.Dataset]) -> tf.data.Dataset:
    joined = streams[0]
    for stream in streams[1:]:
        joined = joined.concatenate(stream)
    return joined
