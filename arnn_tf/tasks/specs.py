"""The task a spec names: what `arnn train --task` and saved programs read.

Task specs, the strings that name a task, understood by `get_task`:

* ``counting``: the paper's synthetic counting-squares task (generated, seeded);
* ``mnist``, ``cifar10``: from tensorflow-datasets (downloaded on first use);
* ``shuffled_mnist``: MNIST with one fixed pixel permutation (the paper's ablation);
* ``shuffled:SPEC``: any task with one fixed pixel permutation, e.g. ``shuffled:folder:PATH``;
  ``shuffled:SEED:SPEC`` draws the permutation by the integer ``SEED`` (``shuffled:SPEC`` is
  seed 0);
* ``permuted:N:SPEC``: the N parts ``shuffled:1:SPEC+...+shuffled:N:SPEC`` (``permuted:10:mnist``
  is PermutedMNIST-10, the many-task benchmark of continual learning);
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

import tensorflow_datasets as tfds

from arnn_tf.modalities.image.counting import counting_task
from arnn_tf.modalities.image.datasets import folder_task, tfds_image_task
from arnn_tf.modalities.image.shuffled import shuffled_task
from arnn_tf.recipes import Recipe, require_task
from arnn_tf.tasks.parts import MultiPartTask

TASK_NAMES: tuple[str, ...] = ("counting", "mnist", "cifar10", "shuffled_mnist")
"""Named tasks; `get_task` also accepts the prefixed specs "tfds:NAME", "folder:PATH" and
"shuffled:SPEC"."""


_PREFIXED_SPECS = (
    "tfds:NAME",
    "folder:PATH",
    "shuffled:[SEED:]SPEC",
    "permuted:N:SPEC",
    "text:PATH",
)


def part_specs(spec: str) -> list[str]:
    """The specs of the parts ``spec`` joins with ``+``, each ``permuted:N:SPEC`` written out
    as its N shuffled parts (a spec of one part is its own list)."""
    specs = []
    for part in spec.split("+"):
        prefix, _, argument = part.partition(":")
        if prefix != "permuted":
            specs.append(part)
            continue
        count, inner = _seeded(argument)
        if count is None or count < 1 or not inner:
            raise ValueError(
                f"task {part!r}: permuted:N:SPEC needs a whole number N of at least 1 and a task"
            )
        specs.extend(f"shuffled:{i}:{inner}" for i in range(1, count + 1))
    return specs


def _part_tasks(spec: str, **options: Any) -> list[Any]:
    """The tasks of ``spec``'s parts; a task that several seeded shuffled parts read (the N
    parts of ``permuted:N:SPEC``) is built once and permuted N ways."""
    read: dict[str, Any] = {}
    tasks = []
    for part in part_specs(spec):
        prefix, _, argument = part.partition(":")
        permutation, inner = _seeded(argument)
        if prefix != "shuffled" or permutation is None:
            tasks.append(get_task(part, **options))
            continue
        if inner not in read:
            read[inner] = get_task(inner, **options)
        tasks.append(shuffled_task(read[inner], name=part, seed=permutation))
    return tasks


def _seeded(argument: str) -> tuple[int | None, str]:
    """``"7:mnist"`` -> (7, "mnist"); an argument without a leading whole number, (None, it)
    (``shuffled:SPEC``'s seed is then 0: `shuffled_task`'s default)."""
    head, _, rest = argument.partition(":")
    if head.isdigit() and rest:
        return int(head), rest
    return None, argument


def get_task(
    spec: str,
    *,
    data_dir: str | None = None,
    seed: int = 0,
    text_level: str = "word",
    part_sampling: str = "uniform",
) -> Any:
    """Build the task named by `spec` (see the module docstring): a `Task`, or for "text:PATH"
    a `arnn_tf.modalities.text.TextTask` tokenised by `text_level` ("word" or "character").

    `part_sampling` is how a task of several parts draws its training examples' parts
    (`arnn_tf.settings.PART_SAMPLING`). `data_dir` is the TFDS data directory (TFDS's default
    when None; unused by counting and folder tasks). `seed` selects the generated counting
    data; the other tasks ignore it.
    Raises ValueError for an unknown spec and FileNotFoundError for a missing folder.
    """
    if "+" in spec or spec.startswith("permuted:"):
        parts = _part_tasks(spec, data_dir=data_dir, seed=seed, text_level=text_level)
        if len(parts) == 1:
            return parts[0]
        return MultiPartTask(spec, tuple(parts), sampling=part_sampling)
    if spec == "counting":
        return counting_task(seed)
    if spec in ("mnist", "cifar10"):
        return tfds_task(spec, data_dir=data_dir, task_name=spec)
    if spec == "shuffled_mnist":
        return shuffled_task(tfds_task("mnist", data_dir=data_dir), name=spec)
    prefix, _, argument = spec.partition(":")
    if prefix == "shuffled" and argument:
        permutation, inner = _seeded(argument)
        inner_task = get_task(inner, data_dir=data_dir, seed=seed)
        return shuffled_task(inner_task, name=spec, seed=permutation or 0)
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


def tfds_task(
    name: str,
    *,
    data_dir: str | None = None,
    task_name: str | None = None,
    text_level: str = "word",
) -> Any:
    """A TFDS classification data set, read by the modality of its kind: fixed-size images
    with `(image, label)` supervised keys (an `ImageTask`), or texts (imdb_reviews,
    ag_news_subset, ...: a `arnn_tf.modalities.text.TextTask` tokenised by ``text_level``).
    Prepared on first use, into ``data_dir`` (TFDS's default when None)."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"unknown TFDS data set {name!r} (the catalogue: "
            "https://www.tensorflow.org/datasets/catalog/overview)"
        ) from None
    task_name = task_name or f"tfds:{name}"
    task = tfds_image_task(builder, name, task_name)
    if task is None:
        from arnn_tf.modalities.text.datasets import (
            tfds_text_task,  # text's Keras preprocessing, only when used
        )

        task = tfds_text_task(builder, name, task_name, text_level)
    if task is None:
        raise ValueError(
            f"TFDS data set {name!r} is not an image- or text-classification data set with "
            "supervised keys ('image', 'label') or ('text', 'label') (an Image or Text and a "
            f"ClassLabel feature); its supervised keys are {builder.info.supervised_keys}"
        )
    return task


def recipe_task(recipe: Recipe, data_dir: str | None = None) -> Any:
    """The task a `arnn_tf.recipes.Recipe` names, built with its seed, text level and part
    sampling (refusing the ``folder`` recipe's placeholder)."""
    return get_task(
        require_task(recipe),
        data_dir=data_dir,
        seed=recipe.seed,
        text_level=recipe.text_level,
        part_sampling=recipe.part_sampling,
    )


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
    if prefix in ("shuffled", "permuted") and argument:
        number, inner = _seeded(argument)
        return "_".join(
            [prefix, *([str(number)] if number is not None else []), short_task_name(inner)]
        )
    return spec
