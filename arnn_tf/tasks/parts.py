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

from arnn_tf.tasks.base import TaskPart

PART_SAMPLING: tuple[str, ...] = ("uniform", "proportional")
"""How a shuffled split draws each example's part: uniformly, or in proportion to size."""


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
        streams = _slotted(
            self.parts,
            [t.dataset(split, 1, shuffle=shuffle, seed=seed, **options) for t in self.part_tasks],
        )
        if shuffle:
            examples = tf.data.Dataset.choose_from_datasets(
                streams, self._choices(split, seed), stop_on_empty_dataset=False
            )
        else:
            examples = _concatenated(streams)
        return self._batched(examples, batch_size, drop_remainder)

    def sample(self, split: str, count: int, batch_size: int, **options: Any) -> tf.data.Dataset:
        """``count`` fixed examples of each part, in part order, in batches as `dataset`'s."""
        streams = _slotted(
            self.parts, [t.sample(split, count, 1, **options) for t in self.part_tasks]
        )
        return self._batched(_concatenated(streams), batch_size, drop_remainder=False)

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

    def _batched(
        self, examples: tf.data.Dataset, batch_size: int, drop_remainder: bool
    ) -> tf.data.Dataset:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")

        def joined(inputs: tuple[Any, ...], labels: tuple[Any, ...]) -> tuple[Any, tf.Tensor]:
            return tuple(x.values for x in inputs), tf.concat([y.values for y in labels], 0)

        batches = examples.ragged_batch(batch_size, drop_remainder=drop_remainder)
        return batches.map(joined, num_parallel_calls=tf.data.AUTOTUNE)


def _slotted(parts: Sequence[TaskPart], streams: Sequence[tf.data.Dataset]) -> list[Any]:
    """Each part's batches of one as a slot per part: its own example in its slot, empty
    slots for the others; its labels offset to its classes' ids."""
    specs = [stream.element_spec[0] for stream in streams]

    def slots_of(part: int) -> Any:
        def slots(inputs: tf.Tensor, labels: tf.Tensor) -> tuple[tuple[tf.Tensor, ...], ...]:
            labels = tf.cast(labels, tf.int32) + parts[part].first_class
            return (
                tuple(inputs if i == part else _empty(spec) for i, spec in enumerate(specs)),
                tuple(labels if i == part else tf.zeros((0,), tf.int32) for i in range(len(specs))),
            )

        return slots

    return [stream.map(slots_of(i)) for i, stream in enumerate(streams)]


def _empty(spec: tf.TensorSpec) -> tf.Tensor:
    """A batch of no examples of ``spec``'s shape and dtype."""
    return tf.zeros((0, *spec.shape[1:]), spec.dtype)


def _concatenated(streams: Sequence[tf.data.Dataset]) -> tf.data.Dataset:
    joined = streams[0]
    for stream in streams[1:]:
        joined = joined.concatenate(stream)
    return joined
