"""Data-driven label maps: each task class read off the ImageNet classes the programmed
network predicts most often for it (frequency), recomputed every epoch (iterative).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Sequence

import keras
import numpy as np

from arnn_tf.label_maps.specs import describe_label_map
from arnn_tf.progress import progress_bar

SAMPLE_IMAGES = 5000
"""Training images a frequency map is computed from (a task's `sample` draws them)."""


def frequency_map(
    source_predictions: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    per_class: int = 1,
    num_source: int = 1000,
    probabilities: np.ndarray | None = None,
) -> list[list[int]]:
    """Frequency label mapping (FLM, Chen et al., ILM-VP, CVPR 2023).

    Counts how often each ImageNet class is the top-1 prediction for each task class's
    images, then assigns pairs greedily, most frequent first, each ImageNet class to at
    most one task class, until every task class has ``per_class`` ImageNet classes.

    Ties in the counts, most often classes never predicted for a task class, matter when
    ``per_class`` is large: a sample rarely holds ten distinct top-1 predictions per class.
    Given ``probabilities`` (each image's softmax over the ImageNet classes), tied pairs are
    ranked by the probability the task class's images put on the ImageNet class, so those
    slots go to classes that carry some mass; without them, or where that ties too, to the
    lowest indices, so the result is deterministic.
    """
    if num_classes * per_class > num_source:
        raise ValueError(
            f"cannot give {num_classes} classes {per_class} distinct ImageNet classes each"
        )
    counts = np.zeros((num_classes, num_source), dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    np.add.at(counts, (labels, np.asarray(source_predictions, dtype=np.int64)), 1)
    mass = np.zeros((num_classes, num_source))
    if probabilities is not None:
        if probabilities.shape != (len(labels), num_source):
            raise ValueError(
                f"probabilities must have shape {(len(labels), num_source)}, "
                f"got {probabilities.shape}"
            )
        np.add.at(mass, labels, probabilities)
    groups: list[list[int]] = [[] for _ in range(num_classes)]
    used = np.zeros(num_source, dtype=bool)
    remaining = num_classes * per_class
    for flat in np.lexsort((-mass.ravel(), -counts.ravel())):  # counts first, then mass; stable
        task_class, source_class = divmod(int(flat), num_source)
        if len(groups[task_class]) < per_class and not used[source_class]:
            groups[task_class].append(source_class)
            used[source_class] = True
            remaining -= 1
            if remaining == 0:
                break
    return [sorted(group) for group in groups]


def source_network(model: Any, part: int = 0) -> keras.Model:
    """Part ``part`` of the model without its label map: its inputs to the backbone's outputs
    (logits or probabilities) under the model's current program (it shares the program's
    variable, so it follows it)."""
    inputs = model.inputs[part]
    return keras.Model(inputs, model.logits(inputs, part=part))


def source_probabilities(
    logits_of: Callable[[Any], Any],
    batches: Iterable[tuple[Any, Any]],
    max_images: int,
    progress: keras.utils.Progbar | None = None,
    progress_from: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet class probabilities (softmax of the logits) of up to ``max_images`` task
    images, with their task labels; ``logits_of`` maps a batch of task images to the logits
    under the current program (a `source_network`, or a black-box trainer's queries), and
    ``progress`` is advanced by the images seen, counted from ``progress_from``."""
    probabilities, labels, seen = [], [], 0
    for batch_images, batch_labels in batches:
        if (
            seen >= max_images
        ):  # checked before using a batch, so a sample of exactly max_images is read to its end
            break
        logits = logits_of(batch_images)
        probabilities.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
        labels.append(keras.ops.convert_to_numpy(batch_labels))
        seen += len(probabilities[-1])
        if progress is not None:
            progress.update(progress_from + min(seen, max_images))
    return np.concatenate(probabilities)[:max_images], np.concatenate(labels)[:max_images]


def source_predictions(
    logits_of: Callable[[Any], Any],
    batches: Iterable[tuple[Any, Any]],
    max_images: int,
    progress: keras.utils.Progbar | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 ImageNet class for up to ``max_images`` task images, with their task labels
    (see `source_probabilities`)."""
    probabilities, labels = source_probabilities(logits_of, batches, max_images, progress)
    return probabilities.argmax(axis=-1), labels


class FrequencyLabelMapping(keras.callbacks.Callback):
    """Sets the model's label map by frequency (FLM) before the first training step, and when
    ``iterative`` (ILM, as in ILM-VP) again before the first step of every later epoch, from
    up to ``max_images`` training images. Remapping before an epoch rather than after it
    means the program always finishes training under the map it is saved with.

    Epochs are counted in global steps (``steps_per_epoch`` each, starting at ``first_step``),
    not in `fit`'s epochs, so a run resumed mid-epoch remaps at the same steps as an
    uninterrupted one; a resumed run keeps the map restored from its checkpoint until then.

    A model of several parts gets one map for all its classes, split among the parts' maps,
    so no two parts share an ImageNet class: ``batches`` and ``max_images`` are then a
    sequence of each part's (its own labels, from 0).

    The ImageNet logits come from ``source``, a function from a part's inputs and the part's
    index to logits under the current program: by default the model's own backbone
    (`source_network`); a black-box trainer passes its query function's answers. With
    ``verbose``, each remap shows a progress bar (it runs the network over the sample,
    minutes on a CPU) and prints the new map, naming task classes by ``class_names``.
    """

    def __init__(
        self,
        batches: Iterable[tuple[Any, Any]] | Sequence[Iterable[tuple[Any, Any]]],
        per_class: int = 1,
        iterative: bool = False,
        max_images: int | Sequence[int] = SAMPLE_IMAGES,
        steps_per_epoch: int | None = None,
        first_step: int = 0,
        class_names: Sequence[str] | None = None,
        verbose: bool = False,
        source: Callable[[Any, int], Any] | None = None,
    ) -> None:
        super().__init__()
        if iterative and (steps_per_epoch is None or steps_per_epoch < 1):
            raise ValueError(
                f"iterative label mapping needs a positive steps_per_epoch, got {steps_per_epoch}"
            )
        several = isinstance(batches, (list, tuple))
        self.part_batches = list(batches) if several else [batches]
        self.part_images = list(max_images) if several else [max_images]  # type: ignore[arg-type]
        self.max_images = sum(self.part_images)
        self.per_class = per_class
        self.iterative = iterative
        self.steps_per_epoch = steps_per_epoch
        self.step = first_step
        self.class_names = class_names
        self.verbose = verbose
        self.source = source

    def remap(self) -> list[list[int]]:
        """Sets every part's map from the sample; returns the groups of all classes."""
        label_maps = self.model.label_maps
        progress = None
        if self.verbose:
            print(
                f"label map before step {self.step}: the network's top-1 ImageNet class for "
                f"{self.max_images:,} training images"
            )
            progress = progress_bar(self.max_images, unit_name="image")
        probabilities, labels = self._sample_probabilities(progress)
        num_source = label_maps[0].num_source_classes
        groups = frequency_map(
            probabilities.argmax(axis=-1),
            labels,
            sum(label_map.num_classes for label_map in label_maps),
            self.per_class,
            num_source,
            probabilities,
        )
        first = 0
        for label_map in label_maps:
            label_map.set_groups(groups[first : first + label_map.num_classes])
            first += label_map.num_classes
        if self.verbose:
            print("label map: " + describe_label_map(groups, self.class_names, num_source))
        return groups

    def _sample_probabilities(
        self, progress: keras.utils.Progbar | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ImageNet probabilities of every part's sample, with labels offset part by part."""
        probabilities, labels, first_class, seen = [], [], 0, 0
        parts = zip(self.model.label_maps, self.part_batches, self.part_images)
        for part, (label_map, batches, limit) in enumerate(parts):
            logits = functools.partial(self.logits_of, part=part)
            found, found_labels = source_probabilities(logits, batches, limit, progress, seen)
            probabilities.append(found)
            labels.append(found_labels + first_class)
            first_class += label_map.num_classes
            seen += limit
        return np.concatenate(probabilities), np.concatenate(labels)

    def images_before_next_step(self) -> int:
        """The task images a remap before the next step will run through the network (0 when
        it does not remap then): what a query budget must leave room for."""
        return self.max_images if self._remaps_now() else 0

    def _remaps_now(self) -> bool:
        return self.step == 0 or (self.iterative and self.step % self.steps_per_epoch == 0)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # built once, so remaps reuse their traced predict steps
        if self.source is not None:
            self.logits_of = self.source
            return
        networks = [source_network(self.model, i) for i in range(len(self.model.label_maps))]
        self.logits_of = lambda inputs, part: networks[part].predict_on_batch(inputs)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._remaps_now():
            self.remap()
        self.step += 1
