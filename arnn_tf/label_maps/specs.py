"""Label-map specs: which ImageNet classes stand for each task class (the output map h_g).

A label map is a list of groups: ``groups[k]`` holds the ImageNet class indices whose
probabilities add up to task class k. `arnn_tf.layers.label_mapping.LabelMapping` applies
one; a spec (`arnn_tf.settings.LABEL_MAP_HELP`) names how the groups are chosen.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from arnn_tf.backbones.imagenet_classes import imagenet_class_names
from arnn_tf.settings import LABEL_MAP_HELP

LABEL_MAP_KINDS = ("first", "random")


DATA_DRIVEN_KINDS = ("frequency", "iterative")


LEARNED_KIND = "linear"


def first_k(num_classes: int, per_class: int = 1) -> list[list[int]]:
    """The paper's map: task class i <- ImageNet classes i*K .. i*K+K-1."""
    return [list(range(i * per_class, (i + 1) * per_class)) for i in range(num_classes)]


def random_choice(
    num_classes: int, per_class: int = 1, seed: int = 0, num_source: int = 1000
) -> list[list[int]]:
    """A seeded choice of ``per_class`` distinct ImageNet classes for each task class."""
    chosen = np.random.default_rng(seed).choice(
        num_source, size=num_classes * per_class, replace=False
    )
    return [
        sorted(int(c) for c in chosen[i * per_class : (i + 1) * per_class])
        for i in range(num_classes)
    ]


def parse_label_map(
    spec: str, num_classes: int, seed: int = 0, num_source: int = 1000
) -> list[list[int]]:
    """Turns a command-line label-map spec (see LABEL_MAP_HELP) into groups, checking it fits."""
    kind, _, arg = spec.partition(":")
    if kind in LABEL_MAP_KINDS or kind in DATA_DRIVEN_KINDS:
        per_class = int(arg) if arg else 1
        if per_class < 1 or num_classes * per_class > num_source:
            raise ValueError(
                f"label map {spec!r}: cannot give {num_classes} classes {per_class} "
                f"distinct ImageNet classes each out of {num_source}"
            )
        if kind != "random":  # data-driven maps start from first:K until the data is seen
            return first_k(num_classes, per_class)
        return random_choice(num_classes, per_class, seed, num_source)
    try:
        groups = [[int(c) for c in entry.split("+")] for entry in spec.split(",")]
    except ValueError:
        raise ValueError(f"unknown label map {spec!r}; use {LABEL_MAP_HELP}") from None
    if len(groups) != num_classes:
        raise ValueError(
            f"label map {spec!r} has {len(groups)} entries for {num_classes} task classes"
        )
    return groups


def learned_map_start(spec: str) -> str | None:
    """For a learned map ("linear" or "linear:START"), the fixed map it starts from ("" for
    Keras' default initialisation); None when ``spec`` is a fixed map."""
    kind, _, start = spec.partition(":")
    if kind != LEARNED_KIND:
        return None
    if start.partition(":")[0] in ("iterative", LEARNED_KIND):
        raise ValueError(
            f"label map {spec!r}: a learned map trains with the program, so it starts "
            "from one fixed map ('linear:frequency', not 'linear:iterative')"
        )
    return start


def data_driven_kind(spec: str) -> tuple[str, int] | None:
    """("frequency" | "iterative", K) for maps computed from the network's predictions (a
    learned map's start included), else None."""
    start = learned_map_start(spec)
    kind, _, arg = (spec if start is None else start).partition(":")
    return (kind, int(arg) if arg else 1) if kind in DATA_DRIVEN_KINDS else None


def describe_label_map(
    groups: Sequence[Sequence[int]],
    class_names: Sequence[str] | None = None,
    num_source: int = 1000,
) -> str:
    """The map as one line, e.g. "airplane <- airliner (404); ...": which classes a data-driven
    map picked is worth seeing, since it shapes what the program must learn. ImageNet names
    are given when the source is the 1000 ImageNet classes."""
    source_names = imagenet_class_names() if num_source == 1000 else None

    def source(index: int) -> str:
        return f"{source_names[index]} ({index})" if source_names else str(index)

    return "; ".join(
        f"{class_names[k] if class_names else k} <- {' + '.join(source(c) for c in group)}"
        for k, group in enumerate(groups)
    )
