"""Tasks with inputs of different kinds (texts and images) trained as one, on one program.

Unlike `arnn_tf.tasks.multi`, which brings image tasks to one image shape and mixes their
examples, a mixed task keeps each member's own input: every training step takes one batch of
each member, and the model (`arnn_tf.models.reprogrammed.ReprogrammedModel`) runs each through its
own input encoder and label map, with one frame program shared by all. Class ids are offset
member by member, as in a combined task, so the answers of one step line up with one label
vector; each member is evaluated on its own test split.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import tensorflow as tf

from arnn_tf.tasks.base import TaskPart


@dataclasses.dataclass(frozen=True)
class MixedTask:
    """Member tasks (an `ImageTask` or `arnn_tf.modalities.text.TextTask` each) served together:
    batches of ``((inputs of member 0, ..., of member k), labels of all, offset)``."""

    modality = "mixed"
    input_state = None
    """Each member keeps its own input state (a text member's vectorizer)."""

    name: str
    members: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ValueError("a mixed task needs at least two member tasks")

    @property
    def parts(self) -> tuple[TaskPart, ...]:
        """Each member's name, first class id and number of classes."""
        offsets = [sum(m.num_classes for m in self.members[:i]) for i in range(len(self.members))]
        return tuple(TaskPart(m.name, o, m.num_classes) for m, o in zip(self.members, offsets))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(f"{m.name}/{name}" for m in self.members for name in m.class_names)

    @property
    def input_description(self) -> str:
        """What the members' examples are, one after the other."""
        return "parts of " + " and ".join(m.input_description for m in self.members)

    def input_notes(self, encoders: Sequence[Any]) -> list[str]:
        """Each member's notes on how its encoder (``encoders``, in member order) reads it."""
        return [n for m, e in zip(self.members, encoders) for n in m.input_notes([e])]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def dataset(self, split: str, batch_size: int, **options: Any) -> tf.data.Dataset:
        """Each member's ``dataset(split, batch_size, **options)``, zipped: one batch of every
        member a step, labels concatenated with the members' class offsets. It ends with the
        shortest member, so evaluate a finite split member by member (`members`)."""
        batches = tuple(m.dataset(split, batch_size, **options) for m in self.members)
        return self._zipped(batches)

    def sample(self, split: str, count: int, batch_size: int, **options: Any) -> tf.data.Dataset:
        """``count`` fixed examples of each member, zipped as `dataset` zips them."""
        return self._zipped(
            tuple(m.sample(split, count, batch_size, **options) for m in self.members)
        )

    def num_examples(self, split: str) -> int:
        """All members' examples of ``split`` together."""
        return sum(m.num_examples(split) for m in self.members)

    def _zipped(self, batches: tuple[tf.data.Dataset, ...]) -> tf.data.Dataset:
        offsets = [part.first_class for part in self.parts]

        def joined(*pairs: tuple[tf.Tensor, tf.Tensor]) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
            labels = [tf.cast(y, tf.int32) + offset for (_, y), offset in zip(pairs, offsets)]
            return tuple(x for x, _ in pairs), tf.concat(labels, axis=0)

        return tf.data.Dataset.zip(batches).map(joined)
