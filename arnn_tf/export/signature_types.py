"""What every signature of an export is made of, whatever it reads."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import tensorflow as tf


class Signature(NamedTuple):
    """A signature's traced function, its input's name and a one-example input for warm-up,
    and what else the SavedModel must keep for it to run (a text program's vectorizer)."""

    function: Any
    input_name: str
    example: np.ndarray
    resources: tuple[Any, ...] = ()


Probabilities = Callable[[tf.Tensor], tf.Tensor]
"""A model's inputs (uint8 images [batch, h, w, c], or token ids [batch, length]) -> class
probabilities [batch, classes]."""
