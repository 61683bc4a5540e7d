"""The counting-squares task of Elsayed et al., "Adversarial Reprogramming of Neural Networks"
(ICLR 2019): count the white squares in a 4x4 grid of framed cells.

Rendering, after the paper's description ("9x9 pixel sized white squares with black frames",
each at one of 16 grid positions, 1 to 10 of them): a 36x36 RGB image, black background, a
4x4 grid of 9x9-pixel cells; between 1 and 10 cells, chosen uniformly at random, hold a
white (255) square with a 1-pixel black frame, that is a 7x7 white block centred in the
cell, so neighbouring squares stay 2 pixels apart. The count is uniform over 1..10 and the
label is count - 1. Images are generated
with numpy, vectorised and seeded: the same seed always gives the same data, and the train
and test splits use different random streams. (With only 16 one-square images possible,
identical images necessarily occur in both splits for small counts.)
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from arnn_tf.modalities.image.task import ImageTask

GRID = 4
CELL = 9
IMAGE_SIZE = GRID * CELL
MAX_COUNT = 10
SQUARE_VALUE = 255
FRAME_WIDTH = 1
"""Width of the black frame around each white square, inside its cell."""

COUNTING_SPLIT_SIZES: dict[str, int] = {"train": 10_000, "test": 2_000}
COUNTING_CLASS_NAMES: tuple[str, ...] = tuple(str(count) for count in range(1, MAX_COUNT + 1))


def _square_mask() -> np.ndarray:
    """Boolean 9x9 mask of the white part of an occupied cell (inside its black frame)."""
    square = np.zeros((CELL, CELL), bool)
    square[FRAME_WIDTH:-FRAME_WIDTH, FRAME_WIDTH:-FRAME_WIDTH] = True
    return square


@functools.lru_cache(maxsize=4)
def generate_counting(
    num_examples: int, seed: int, stream: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`(images uint8 [n, 36, 36, 3], labels int32 [n])`, deterministic in `(seed, stream)`.

    `stream` separates independent data from one seed (the task uses one per split).
    Cached because `ImageTask.dataset` and `ImageTask.num_examples` rebuild the split on each call.
    """
    rng = np.random.default_rng([seed, stream])
    counts = rng.integers(1, MAX_COUNT + 1, size=num_examples)
    # The `count` cells with the smallest random keys hold a square: a uniform random subset.
    ranks = rng.random((num_examples, GRID * GRID)).argsort(axis=1).argsort(axis=1)
    occupied = (ranks < counts[:, None]).reshape(num_examples, GRID, GRID)
    occupied_pixels = occupied.repeat(CELL, axis=1).repeat(CELL, axis=2) & np.tile(
        _square_mask(), (GRID, GRID)
    )
    gray = np.where(occupied_pixels, np.uint8(SQUARE_VALUE), np.uint8(0))
    images = np.repeat(gray[..., None], 3, axis=-1)
    labels = (counts - 1).astype(np.int32)
    return images, labels


def counting_task(seed: int = 0) -> ImageTask:
    """The counting task; `seed` picks the generated data (train and test streams differ)."""

    def load(split: str) -> tf.data.Dataset:
        stream = list(COUNTING_SPLIT_SIZES).index(split)
        images, labels = generate_counting(COUNTING_SPLIT_SIZES[split], seed, stream)
        return tf.data.Dataset.from_tensor_slices((images, labels))

    return ImageTask(
        name="counting",
        image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        class_names=COUNTING_CLASS_NAMES,
        _load=load,
    )
