"""`ImagePlacement`: the image input encoder, a task image placed in the backbone's frame.

The paper's ``X~``: task pixels ([0, 255], 1 or 3 channels) as RGB in [-1, 1], optionally
resized, zero-padded and centred in the n x n frame; and the mask M of where a program may act
(outside the image, or only in a band at the frame's edge, or everywhere for the "full"
program). A `arnn_tf.layers.frame_program.FrameProgram` adds the program to this canvas where the
mask lets it. `ConcealedPlacement` is the other image encoder: the task image hidden in a host
photo (the paper's concealment ablation). `keras.ops` only, any backend.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from arnn_tf.modalities.base import renamed_setting
from arnn_tf.modalities.host_photo import (
    add_host_photo,
    check_conceal_scale,
    host_frame,
    recipe_host_photo,
)


class ImageEncoder(keras.layers.Layer):
    """What the image input encoders share: task images [batch, h, w, c] (pixel values in
    [0, 255], 1 or 3 channels) in, frames [batch, n, n, 3] out. Any of them can answer for
    an image and its mirror image (`ReprogrammedModel`'s ``flip_average``)."""

    modality = "image"
    """What the encoder reads; saved programs and exports dispatch on it."""

    @staticmethod
    def input_description(config: dict[str, Any]) -> str:
        """What an encoder of this ``config`` reads, as a task describes its input."""
        return images_description(config["task_image_shape"])

    def __init__(self, frame_size: int, task_image_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        height, width, channels = (int(v) for v in task_image_shape)
        if channels not in (1, 3) or min(height, width) < 1:
            raise ValueError(
                f"task images need 1 or 3 channels, got shape {tuple(task_image_shape)}"
            )
        self.frame_size = int(frame_size)
        self.task_image_shape = (height, width, channels)

    def model_input(self) -> Any:
        """The model input this encoder reads: uint8-range images of the task's shape."""
        return keras.Input(self.task_image_shape, name="images")

    def task_pixels(self, images: Any) -> Any:
        """Task images, [0, 255] with 1 or 3 channels, as RGB in [-1, 1] in the compute dtype."""
        x = ops.cast(images, self.compute_dtype) / 127.5 - 1.0
        return ops.repeat(x, 3, axis=-1) if self.task_image_shape[2] == 1 else x

    def mirror(self, images: Any) -> Any:
        """The images mirrored left to right: inputs of the same task and class for photos
        (not digits or text), for a model that averages its answers over both."""
        return ops.flip(images, axis=2)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], self.frame_size, self.frame_size, 3)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(frame_size=self.frame_size, task_image_shape=list(self.task_image_shape))
        return config


@keras.saving.register_keras_serializable(package="arnn_tf")
class ImagePlacement(ImageEncoder):
    """Task images [batch, h, w, c] to canvases [batch, n, n, 3] in [-1, 1], and a program mask.

    Args:
        frame_size: n, the backbone's input width and height.
        task_image_shape: (height, width, channels) of the task images, channels 1 or 3.
        image_size: if set, task images are first resized to this (height, width).
        border_width: if set, the program mask keeps only a band this wide at the frame's edge.
        full_program: if True the mask also opens the image window (the "full"
            program); by default the task image is left untouched, as in the paper.
    """

    def __init__(
        self,
        frame_size: int,
        task_image_shape: Sequence[int],
        image_size: Sequence[int] | None = None,
        border_width: int | None = None,
        full_program: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "image_placement")
        super().__init__(frame_size, task_image_shape, **kwargs)
        height, width, _ = self.task_image_shape
        window = (height, width) if image_size is None else tuple(int(v) for v in image_size)
        if len(window) != 2 or min(window) < 1:
            raise ValueError(f"image_size must be (height, width), got {image_size!r}")
        if max(window) > frame_size:
            raise ValueError(
                f"the task image ({window[0]}x{window[1]}) does not fit in the backbone's "
                f"{frame_size}x{frame_size} input; use a smaller image_size or a larger frame_size"
            )
        if border_width is not None and not 0 < border_width <= frame_size // 2:
            raise ValueError(f"border_width must be in 1..{frame_size // 2}, got {border_width}")
        self.image_size = None if image_size is None else window
        self.border_width = border_width
        self.full_program = bool(full_program)
        top = (frame_size - window[0]) // 2
        left = (frame_size - window[1]) // 2
        self.padding = ((top, frame_size - window[0] - top), (left, frame_size - window[1] - left))
        self.program_mask = self._make_mask()

    def _make_mask(self) -> np.ndarray:
        """M: 1 where the program may act, 0 in the task window (and inside the band, if any)."""
        n = self.frame_size
        mask = np.ones((n, n, 3), dtype="float32")
        (top, bottom), (left, right) = self.padding
        if not self.full_program:
            mask[top : n - bottom, left : n - right] = 0.0
        if self.border_width is not None:
            b = self.border_width
            mask[b : n - b, b : n - b] = 0.0
        return mask

    def call(self, images: Any) -> Any:
        x = self.task_pixels(images)
        if self.image_size is not None:
            x = ops.image.resize(x, self.image_size, interpolation="bilinear")
        return ops.pad(x, ((0, 0), *self.padding, (0, 0)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            image_size=None if self.image_size is None else list(self.image_size),
            border_width=self.border_width,
            full_program=self.full_program,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ImagePlacement":
        """Also reads a config saved before ``full_program`` kept its recipe name."""
        return super().from_config(renamed_setting(config, "program_covers_image", "full_program"))


def recipe_image_size(recipe: Any, frame_size: int) -> tuple[int, int] | None:
    """The square size task images are resized to under a recipe: its ``image_size``, or its
    ``image_scale`` of the frame's side (so one recipe suits a frame of any size); None keeps
    the task's own size."""
    if recipe.image_scale is not None:
        side = max(1, round(recipe.image_scale * frame_size))
        return side, side
    if recipe.image_size is not None:
        return recipe.image_size, recipe.image_size
    return None


def image_encoder_for(recipe: Any, task: Any, frame_size: int, name: str) -> ImageEncoder:
    """An image task's encoder called ``name``, as a `arnn_tf.recipes.Recipe` sets it: its
    placement (resized to its ``image_size``, its program in a ``border_width`` band or over
    the image), or its concealment in the recipe's host photo."""
    host_image, conceal_scale = recipe_host_photo(recipe, frame_size)
    if host_image is not None:
        return ConcealedPlacement(
            frame_size,
            task.image_shape,
            conceal_scale,
            recipe.seed,
            host_image=host_image,
            name=name,
        )
    return ImagePlacement(
        frame_size,
        task.image_shape,
        image_size=recipe_image_size(recipe, frame_size),
        border_width=recipe.border_width,
        full_program=recipe.full_program,
        name=name,
    )


@keras.saving.register_keras_serializable(package="arnn_tf")
class ConcealedPlacement(ImageEncoder):
    """Task images hidden in a natural photo, the host:
    ``host + conceal_scale * shuffle(tile(X~))``.

    After Elsayed et al. (2019), "Concealing adversarial programs": the task image is tiled over
    the whole n x n frame (cropped at the right and bottom edges) and the frame's pixel
    positions are shuffled by one fixed permutation, the same for every image and channel,
    drawn with ``np.random.default_rng(permutation_seed)`` as the `shuffled:TASK` ablation
    draws its. The program mask is the whole frame: a `arnn_tf.layers.frame_program.FrameProgram`
    with ``linf_bound=conceal_scale`` then gives the paper's
    ``X_adv = clip(host + alpha * (tanh(W) + shuffle(tile(X~))), -1, 1)``, which changes the
    photo by at most ``2 * alpha`` (alpha 0.1: at most 25.5 of 255 grey levels).

    The photo is a non-trainable weight (`arnn_tf.modalities.host_photo`), saved with the weights.

    Args:
        frame_size: n, the backbone's input width and height.
        task_image_shape: (height, width, channels) of the task images, channels 1 or 3, at
            most n x n.
        conceal_scale: alpha, in (0, 1]; the paper kept it small (0.1).
        permutation_seed: seed of the pixel permutation.
        host_image: the host photo, (n, n, 3) pixel values in [0, 255]; None for black.
    """

    def __init__(
        self,
        frame_size: int,
        task_image_shape: Sequence[int],
        conceal_scale: float,
        permutation_seed: int = 0,
        host_image: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "concealed_placement")
        super().__init__(frame_size, task_image_shape, **kwargs)
        height, width, _ = self.task_image_shape
        n = self.frame_size
        if max(height, width) > n:
            raise ValueError(
                f"the task image ({height}x{width}) does not fit in the backbone's {n}x{n} input"
            )
        self.conceal_scale = check_conceal_scale(conceal_scale)
        self.permutation_seed = int(permutation_seed)
        rng = np.random.default_rng(self.permutation_seed)
        self.permutation = rng.permutation(n * n).astype("int32")
        self.tiles = (-(-n // height), -(-n // width))
        self.host_image = add_host_photo(self, n, host_image)
        self.program_mask = np.ones((n, n, 3), dtype="float32")

    def hidden_task_image(self, images: Any) -> Any:
        """``shuffle(tile(X~))``: the task images tiled over the frame, pixels permuted."""
        n = self.frame_size
        tiled = ops.tile(self.task_pixels(images), (1, *self.tiles, 1))[:, :n, :n, :]
        shuffled = ops.take(ops.reshape(tiled, (-1, n * n, 3)), self.permutation, axis=1)
        return ops.reshape(shuffled, (-1, n, n, 3))

    def call(self, images: Any) -> Any:
        host = host_frame(self.host_image, self.compute_dtype)
        return host + self.conceal_scale * self.hidden_task_image(images)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(conceal_scale=self.conceal_scale, permutation_seed=self.permutation_seed)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ConcealedPlacement":
        """Also reads a config saved before ``conceal_scale`` kept its name ("scale")."""
        return super().from_config(renamed_setting(config, "scale", "conceal_scale"))


def images_description(shape: Sequence[int]) -> str:
    """Task images of ``shape`` (height, width, channels), as programs and tasks name them."""
    height, width, channels = (int(v) for v in shape)
    return f"{height}x{width}x{channels} images"
