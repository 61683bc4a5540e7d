"""Ways to choose which ImageNet classes stand for each task class (the output map h_g).

A label map is a list of groups: ``groups[k]`` holds the ImageNet class indices whose
probabilities add up to task class k. `LabelMapping` in `arnn_tf.layers` applies one.
"""

from __future__ import annotations

import numpy as np

LABEL_MAP_KINDS = ("first", "random")
LABEL_MAP_HELP = (
    "first (the paper: task class i <- ImageNet class i), first:K (K consecutive classes each), "
    "random[:K] (a seeded random choice, K per class), or an explicit list like '9,3,7' or "
    "'1+2,5+6' (one entry per task class, '+' joins several ImageNet classes)"
)


def first_k(num_classes: int, per_class: int = 1) -> list[list[int]]:
    """The paper's map: task class i <- ImageNet classes i*K .. i*K+K-1."""
    return [list(range(i * per_class, (i + 1) * per_class)) for i in range(num_classes)]


def random_choice(num_classes: int, per_class: int = 1, seed: int = 0,
                  num_source: int = 1000) -> list[list[int]]:
    """A seeded choice of ``per_class`` distinct ImageNet classes for each task class."""
    chosen = np.random.default_rng(seed).choice(num_source, size=num_classes * per_class, replace=False)
    return [sorted(int(c) for c in chosen[i * per_class : (i + 1) * per_class]) for i in range(num_classes)]


def parse_label_map(spec: str, num_classes: int, seed: int = 0,
                    num_source: int = 1000) -> list[list[int]]:
    """Turns a command-line label-map spec (see LABEL_MAP_HELP) into groups, checking it fits."""
    kind, _, arg = spec.partition(":")
    if kind in LABEL_MAP_KINDS:
        per_class = int(arg) if arg else 1
        if per_class < 1 or num_classes * per_class > num_source:
            raise ValueError(f"label map {spec!r}: cannot give {num_classes} classes {per_class} "
                             f"distinct ImageNet classes each out of {num_source}")
        if kind == "first":
            return first_k(num_classes, per_class)
        return random_choice(num_classes, per_class, seed, num_source)
    try:
        groups = [[int(c) for c in entry.split("+")] for entry in spec.split(",")]
    except ValueError:
        raise ValueError(f"unknown label map {spec!r}; use {LABEL_MAP_HELP}") from None
    if len(groups) != num_classes:
        raise ValueError(f"label map {spec!r} has {len(groups)} entries for {num_classes} task classes")
    return groups
