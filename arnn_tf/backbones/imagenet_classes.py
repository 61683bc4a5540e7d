"""The 1000 ImageNet (ILSVRC-2012) class names, in the index order of ImageNet classifiers.

Source: ``IMAGENET_LABELS_LIST`` in tensorflow-datasets 4.9.10
(``tensorflow_datasets/datasets/siscore/labels.py``, itself from the widely used
``imagenet1000_clsidx_to_labels`` list), keeping the first synonym of each entry
("tench, Tinca tinca" -> "tench"). Index 638 and 639 are both "maillot" there, as in
WordNet.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["imagenet_class_names"]


@functools.cache
def _load() -> tuple[str, ...]:
    text = resources.files("arnn_tf.backbones").joinpath("imagenet_classes.json").read_text("utf-8")
    names = json.loads(text)
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_classes.json holds {len(names)} names, expected 1000")
    return tuple(names)


def imagenet_class_names() -> list[str]:
    """Class name per ImageNet index (0 "tench", 281 "tabby", 967 "espresso"); a fresh list."""
    return list(_load())
