"""The task a spec names: what `arnn train --task` and saved programs read.

Task specs, the strings that name a task, understood by `get_task`:

* ``counting``: the paper's synthetic counting-squares task (generated, seeded);
* ``mnist``, ``cifar10``: from tensorflow-datasets (downloaded on first use);
* ``shuffled_mnist``: MNIST with one fixed pixel permutation (the paper's ablation);
* ``shuffled:SPEC``: any task with one fixed pixel permutation, e.g. ``shuffled:folder:PATH``;
* ``tfds:NAME``: any fixed-size TFDS image-classification data set, e.g. ``tfds:fashion_mnist``,
  or TFDS text-classification one, e.g. ``tfds:imdb_reviews`` (a `arnn_tf.text.TextTask`);
* ``folder:PATH``: images in ``PATH/<split>/<class>/<image>``, splits train and test;
* ``text:PATH``: text classification from ``PATH/<split>/<class>.txt`` (one example a line)
  or ``PATH/<split>/<class>/*.txt`` (one a file), a `arnn_tf.text.TextTask`;
* ``A+B[+...]``: several of the above trained as one, on one program: a `MultiPartTask`
  whose parts keep their own inputs and classes (`arnn_tf.tasks.parts`).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from arnn_tf.modalities.image.counting import counting_task
from arnn_tf.modalities.image.datasets import folder_task, tfds_task
from arnn_tf.modalities.image.shuffled import shuffled_task
from arnn_tf.tasks.parts import MultiPartTask

TASK_NAMES: tuple[str, ...] = ("counting", "mnist", "cifar10", "shuffled_mnist")
"""Named tasks; `get_task` also accepts the prefixed specs "tfds:NAME", "folder:PATH" and
"shuffled:SPEC"."""


_PREFIXED_SPECS = ("tfds:NAME", "folder:PATH", "shuffled:SPEC", "text:PATH")


def get_task(
    spec: str, *, data_dir: str | None = None, seed: int = 0, text_level: str = "word"
) -> Any:
    """Build the task named by `spec` (see the module docstring): a `Task`, or for "text:PATH"
    a `arnn_tf.modalities.text.TextTask` tokenised by `text_level` ("word" or "character").

    `data_dir` is the TFDS data directory (TFDS's default when None; unused by counting and
    folder tasks). `seed` selects the generated counting data; the other tasks ignore it.
    Raises ValueError for an unknown spec and FileNotFoundError for a missing folder.
    """
    if "+" in spec:
        parts = [
            get_task(part, data_dir=data_dir, seed=seed, text_level=text_level)
            for part in spec.split("+")
        ]
        return MultiPartTask(spec, tuple(parts))
    if spec == "counting":
        return counting_task(seed)
    if spec in ("mnist", "cifar10"):
        return tfds_task(spec, data_dir=data_dir, task_name=spec)
    if spec == "shuffled_mnist":
        return shuffled_task(tfds_task("mnist", data_dir=data_dir), name=spec)
    prefix, _, argument = spec.partition(":")
    if prefix == "shuffled" and argument:
        return shuffled_task(get_task(argument, data_dir=data_dir, seed=seed), name=spec)
    if prefix == "tfds" and argument:
        return tfds_task(argument, data_dir=data_dir, task_name=spec, text_level=text_level)
    if prefix == "folder" and argument:
        return folder_task(argument, task_name=spec)
    if prefix == "text" and argument:
        from arnn_tf.modalities.text.task import (
            text_task,  # text's Keras preprocessing, only when used
        )

        return text_task(argument, task_name=spec, level=text_level)  # type: ignore[arg-type]
    known = ", ".join(TASK_NAMES + _PREFIXED_SPECS)
    raise ValueError(f"Unknown task {spec!r}; known tasks: {known}")


def short_task_name(spec: str) -> str:
    """The spec without where its data lives, for names users read (export signatures):
    ``folder:/data/mnist`` -> ``mnist``, ``tfds:svhn_cropped`` -> ``svhn_cropped``,
    ``shuffled:SPEC`` -> ``shuffled_`` + SPEC's short name; ``+`` joins several parts' names.
    """
    if "+" in spec:
        return "+".join(short_task_name(part) for part in spec.split("+"))
    prefix, _, argument = spec.partition(":")
    if prefix in ("folder", "text") and argument:
        return PurePath(argument.rstrip("/\\")).name or argument
    if prefix == "tfds" and argument:
        return argument
    if prefix == "shuffled" and argument:
        return f"shuffled_{short_task_name(argument)}"
    return spec
