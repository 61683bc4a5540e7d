"""`FrameProgram`: the learned program added to a frame an input encoder has already made.

An input encoder turns a task input into a canvas the backbone's size (the token patches of
`arnn_tf.modalities.text.TokenPatchEncoder`, say); the frame program adds ``P = tanh(W * M)``
to it, where the encoder's mask M says where the program may act, and clips the sum to
[-1, 1]. Because it knows nothing of the input, one frame program can serve several encoders
(text and images on one program). It uses `keras.ops` only, so it runs on any Keras backend.

W is n x n x 3, or, with ``code_dimension`` d, the image of a code of d numbers under a fixed
projection drawn from ``code_seed`` (a d x 3c^2 Gaussian matrix onto a c x c x 3 grid,
``code_grid`` c, 16 by default, upsampled bilinearly to the frame): a program of low intrinsic
dimension, as ZIP (ICLR 2025) writes its prompt, whose d entries zeroth-order estimates can
explore with few queries.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from arnn_tf.settings import DEFAULT_CODE_GRID

@keras.saving.register_keras_serializable(package="arnn_tf")
class FrameProgram(keras.layers.Layer):
    """``X_adv = clip(canvas + P, -1, 1)`` with ``P = linf_bound * tanh(W * M)``.

    A program shared by several encoders (a many-part model) has one mask per encoder,
    ``masks``; ``call(canvas, part=i)`` and ``program(part=i)`` use mask i.

    Args:
        frame_size: n, the backbone's input width and height; W is n x n x 3.
        mask: M (n x n x 3, values in [0, 1]), where the program acts; None: everywhere.
            It is fixed by the encoder, so it is rebuilt from the encoder and not saved.
        linf_bound: if set, an L-infinity bound on P in units of the [-1, 1] range.
        l2: lambda, the weight of ``||W||_F^2`` in the loss (of the code's, for a code).
        masks: one mask per part instead of ``mask``.
        clip: clip the sum to [-1, 1]. An encoder whose canvas is 0 wherever the mask opens
            (the paper's padded image, with ``|P| <= 1``) never leaves the range, and skipping
            the clip saves its gradient's selects over every frame pixel in each step.
        code_dimension: if set, the trainable weight is a code of this many numbers and W
            its fixed projection (see the module's docstring); ``weight`` is then the code.
        code_seed: the seed the projection is drawn from.
        code_grid: c, the side of the c x c x 3 grid the code is projected onto.
        part_regions: give each part its own region of the frame: square tiles of the frame
            dealt out at random (a fixed draw) among the parts, each part's mask then open
            only on its own tiles, so no two parts' programs use the same entry of W.
    """

    def __init__(
        self,
        frame_size: int,
        mask: np.ndarray | None = None,
        linf_bound: float | None = None,
        l2: float = 0.0,
        masks: Sequence[np.ndarray] | None = None,
        clip: bool = True,
        code_dimension: int | None = None,
        code_seed: int = 0,
        code_grid: int = DEFAULT_CODE_GRID,
        part_regions: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "frame_program")
        super().__init__(**kwargs)
        if frame_size < 1:
            raise ValueError(f"frame_size must be positive, got {frame_size}")
        if linf_bound is not None and not linf_bound > 0:
            raise ValueError(f"linf_bound must be positive, got {linf_bound}")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        if mask is not None and masks is not None:
            raise ValueError("give the program one mask, or one mask per part, not both")
        self.frame_size = int(frame_size)
        self.part_regions = bool(part_regions)
        self.set_masks(masks if masks is not None else [mask])
        self.linf_bound = linf_bound
        self.l2 = float(l2)
        self.clip = bool(clip)
        if code_dimension is not None and not code_dimension >= 1:
            raise ValueError(f"code_dimension must be a positive integer, got {code_dimension}")
        if code_dimension is not None and not 1 <= code_grid <= frame_size:
            raise ValueError(
                f"code_grid must be a side from 1 to the frame's {frame_size}, got {code_grid}"
            )
        self.code_dimension = code_dimension
        self.code_seed = int(code_seed)
        self.code_grid = int(code_grid)
        self.weight = self.add_weight(
            name="W",
            shape=self.weight_shape,
            initializer="zeros",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            trainable=True,
        )
        self.projection = None
        if code_dimension is not None:  # a fixed weight: made a tensor once, not at each call
            matrix = code_projection(code_dimension, code_seed, self.code_grid)
            self.projection = self.add_weight(
                name="projection", shape=matrix.shape, initializer="zeros", trainable=False
            )
            self.projection.assign(matrix)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The trainable weight's shape: the frame's n x n x 3, or the code's (d,)."""
        n = self.frame_size
        return (n, n, 3) if self.code_dimension is None else (self.code_dimension,)

    def frame_weight(self, weight: Any = None) -> Any:
        """W at the frame's n x n x 3: the weight itself, or its code's projection; of
        ``weight`` instead of the layer's where given (`frames`), a batch of them too."""
        weight = self.weight if weight is None else ops.convert_to_tensor(weight, "float32")
        if self.projection is None:
            return weight
        batched = len(weight.shape) == 2
        codes = weight if batched else ops.expand_dims(weight, 0)
        grid = ops.matmul(codes, self.projection)
        grid = ops.reshape(grid, (-1, self.code_grid, self.code_grid, 3))
        size = (self.frame_size, self.frame_size)
        frames = ops.image.resize(grid, size, interpolation="bilinear")
        return frames if batched else frames[0]

    def set_masks(self, masks: Sequence[np.ndarray | None]) -> None:
        """The masks of the parts (None: everywhere); they are the encoders', so a program
        rebuilt from its config gets them again from its encoders."""
        n = self.frame_size
        checked = []
        for mask in masks:
            mask = np.ones((n, n, 3), "float32") if mask is None else np.asarray(mask, "float32")
            if mask.shape != (n, n, 3):
                raise ValueError(f"the program mask must be {n}x{n}x3, got shape {mask.shape}")
            checked.append(mask)
        if not checked:
            raise ValueError("the program needs at least one mask")
        self.masks = _in_regions(checked) if self.part_regions else checked

    @property
    def mask(self) -> np.ndarray:
        """The first part's mask (a one-encoder program's only one)."""
        return self.masks[0]

    def program(self, part: int = 0, weight: Any = None) -> Any:
        """P of part ``part``, in [-linf_bound, linf_bound] (or [-1, 1]); under ``weight``
        instead of the layer's W where given (see `frames`)."""
        mask = ops.convert_to_tensor(self.masks[part], dtype=self.weight.dtype)
        p = ops.tanh(self.frame_weight(weight) * mask)
        return p if self.linf_bound is None else self.linf_bound * p

    def call(self, canvas: Any, part: int = 0) -> Any:
        return self.frames(canvas, part=part)

    def frames(self, canvas: Any, weight: Any = None, part: int = 0) -> Any:
        """X_adv of ``canvas`` under W, or under ``weight``: another value of the weight (its
        shape, `weight_shape`), or one for each canvas (``[batch, *weight_shape]``), as
        black-box training asks for perturbed programs; the layer's own W is left as it is."""
        x_adv = ops.cast(canvas, self.compute_dtype) + ops.cast(
            self.program(part, weight), self.compute_dtype
        )
        return ops.clip(x_adv, -1.0, 1.0) if self.clip else x_adv

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], self.frame_size, self.frame_size, 3)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            frame_size=self.frame_size, linf_bound=self.linf_bound, l2=self.l2, clip=self.clip
        )
        # a frame-sized W's config, and a code's on the default grid, stay as they were
        if self.code_dimension is not None:
            config.update(code_dimension=self.code_dimension, code_seed=self.code_seed)
        if self.code_grid != DEFAULT_CODE_GRID:
            config.update(code_grid=self.code_grid)
        if self.part_regions:
            config.update(part_regions=True)
        return config


REGION_TILES = 14
"""The side of the grid of tiles that ``part_regions`` deals out (8 x 8 pixels at 112)."""


def _in_regions(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Each part's mask open only on its own share of the frame: the frame cut into 14 x 14
    square tiles, dealt out in turn in an order drawn from the frame's size and the number of
    parts (whole tiles, not scattered pixels: a program on scattered pixels is impulse noise
    to the network)."""
    n, parts = masks[0].shape[0], len(masks)
    tiles = REGION_TILES * REGION_TILES
    order = np.random.default_rng((n, parts)).permutation(tiles)
    owner = np.empty(tiles, "int64")
    owner[order] = np.arange(tiles) % parts
    side = -(-n // REGION_TILES)
    pixels = np.kron(owner.reshape(REGION_TILES, REGION_TILES), np.ones((side, side), "int64"))
    pixels = pixels[:n, :n, None]
    return [mask * (pixels == i) for i, mask in enumerate(masks)]


def code_projection(dimension: int, seed: int, grid: int = DEFAULT_CODE_GRID) -> np.ndarray:
    """The fixed d x (c * c * 3) projection of a program's code onto a ``grid`` c, Gaussian
    with variance 1/d (so a code of unit entries makes a grid of unit entries), drawn from
    ``seed``."""
    rng = np.random.default_rng(seed)
    columns = grid * grid * 3
    return (rng.standard_normal((dimension, columns)) / np.sqrt(dimension)).astype("float32")
