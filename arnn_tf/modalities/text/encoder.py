"""Token patches: text as an image for a frozen ImageNet classifier (Neekhara et al., WACV 2022).

Each token id owns a learned p x p x 3 patch, ``tanh(table[id])``; a sequence of ids becomes an
n x n frame in [-1, 1] by laying its tokens' patches on the frame's (n/p) x (n/p) grid in
row-major order. Optionally the patches are blended into a host photo with a small weight, as
the paper's concealment ablation hides images: ``X = host + alpha * patches`` (the frame
program then adds ``alpha * tanh(W)``, so the photo changes by at most ``2 * alpha``). Like
`arnn_tf.layers.label_mapping`, the layer uses `keras.ops` only, so it runs on any Keras
backend, and round-trips through `get_config`.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from arnn_tf.modalities.base import renamed_setting
from arnn_tf.modalities.host_photo import add_host_photo, check_conceal_scale, host_frame

PADDING_ID = 0
"""The padding token id, the one `keras.layers.TextVectorization` fills short sequences with."""

TEXT_DESCRIPTION = "text"
"""A text task's input, as programs and tasks name it."""


@keras.saving.register_keras_serializable(package="arnn_tf")
class TokenPatchEncoder(keras.layers.Layer):
    """Token ids [batch, length] to frames [batch, n, n, 3] in [-1, 1], one learned patch a token.

    Slot i of the row-major (n/p) x (n/p) grid holds token i's patch ``tanh(table[id])``
    reshaped to p x p x 3. A sequence fills at most ``slots = (n/p)**2`` slots: longer ones are
    cut, shorter ones are padded with `PADDING_ID`, whose own learned patch then fills the slots
    past the text's end (an empty text shows it everywhere: a learned "no text" frame). With
    ``repeat_last`` those slots repeat the last real token's patch instead, so a short text
    covers the whole frame, but the last word then fills every empty slot: on SST-2's phrases of
    a few words that is most of the frame (`EXPERIMENTS.md` compares the two).

    Ids must lie in ``0 .. vocabulary_size - 1`` (TextVectorization's ids do, with 1 its
    out-of-vocabulary id); the table row of every id, padding included, is trained.

    Args:
        vocabulary_size: rows of the table, e.g. ``TextVectorization.vocabulary_size()``.
        frame_size: n, the backbone's input width and height.
        patch_size: p, the side of one token's patch; n must be a multiple of p.
        embeddings_initializer: the table's initializer (on tanh's linear part by default, so
            patches start as small, distinct values around grey).
        repeat_last: fill the slots past the text's end with its last token, not padding.
        conceal_scale: if set, alpha in (0, 1]: the frame is ``host + alpha * patches``, the
            host photo (n x n x 3 pixels in [0, 255], ``host_image``) in a non-trainable
            weight saved with the layer's weights, not its config (black until they load).
        host_image: that photo; None for black.
    """

    modality = "text"
    """What the encoder reads; saved programs and exports dispatch on it."""

    @staticmethod
    def input_description(config: dict[str, Any]) -> str:
        """What an encoder of this ``config`` reads, as a task describes its input."""
        return TEXT_DESCRIPTION

    def __init__(
        self,
        vocabulary_size: int,
        frame_size: int = 224,
        patch_size: int = 16,
        embeddings_initializer: str | dict[str, Any] | keras.initializers.Initializer = (
            "random_uniform"
        ),
        repeat_last: bool = False,
        conceal_scale: float | None = None,
        host_image: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "token_patch_encoder")
        super().__init__(**kwargs)
        if vocabulary_size < 1 or patch_size < 1 or frame_size < 1:
            raise ValueError(
                f"vocabulary_size, frame_size and patch_size must be positive, got "
                f"{vocabulary_size}, {frame_size} and {patch_size}"
            )
        if frame_size % patch_size:
            raise ValueError(
                f"frame_size {frame_size} is not a multiple of patch_size {patch_size}: the "
                f"token patches would not tile the frame; pick a patch size that divides it"
            )
        self.vocabulary_size = int(vocabulary_size)
        self.frame_size = int(frame_size)
        self.patch_size = int(patch_size)
        self.grid = self.frame_size // self.patch_size
        self.repeat_last = bool(repeat_last)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.table = self.add_weight(
            name="table",
            shape=(self.vocabulary_size, self.patch_size * self.patch_size * 3),
            initializer=self.embeddings_initializer,
            trainable=True,
        )
        hidden = conceal_scale is not None
        self.conceal_scale = check_conceal_scale(conceal_scale) if hidden else None
        self.host_image = add_host_photo(self, frame_size, host_image) if hidden else None

    @property
    def slots(self) -> int:
        """How many tokens fit on one frame: (n/p) squared."""
        return self.grid * self.grid

    @property
    def program_mask(self) -> np.ndarray:
        """M [n, n, 3]: where a frame program may add to the canvas, everywhere (all ones).

        The token patches cover the whole frame and carry no fixed content to protect, so a
        program shared by all frames may add on top of every pixel (then clip to [-1, 1]).
        """
        return np.ones((self.frame_size, self.frame_size, 3), dtype="float32")

    def model_input(self) -> Any:
        """The model input this encoder reads: token ids [batch, any length], as
        `keras.layers.TextVectorization` gives them."""
        return keras.Input((None,), dtype="int32", name="token_ids")

    def slot_ids(self, ids: Any) -> Any:
        """The id shown in each slot [batch, slots]: cut or padded; with ``repeat_last``, the
        last real token repeated past the sequence's end (the padding id for an empty one)."""
        ids = ops.cast(ids, "int32")
        padded = ops.pad(ids, ((0, 0), (0, self.slots)), constant_values=PADDING_ID)
        ids = padded[:, : self.slots]
        if not self.repeat_last:
            return ids
        positions = ops.arange(self.slots, dtype="int32")
        real = ops.where(ops.not_equal(ids, PADDING_ID), positions[None, :], -1)
        last = ops.maximum(ops.max(real, axis=1, keepdims=True), 0)
        return ops.take_along_axis(ids, ops.minimum(positions[None, :], last), axis=1)

    def call(self, ids: Any) -> Any:
        n, p, g = self.frame_size, self.patch_size, self.grid
        patches = ops.tanh(ops.take(self.table, self.slot_ids(ids), axis=0))
        patches = ops.reshape(patches, (-1, g, g, p, p, 3))
        rows = ops.transpose(patches, (0, 1, 3, 2, 4, 5))  # grid row, pixel row, grid col, ...
        frame = ops.cast(ops.reshape(rows, (-1, n, n, 3)), self.compute_dtype)
        if self.host_image is None:
            return frame
        return host_frame(self.host_image, self.compute_dtype) + self.conceal_scale * frame

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], self.frame_size, self.frame_size, 3)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            frame_size=self.frame_size,
            patch_size=self.patch_size,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            repeat_last=self.repeat_last,
            conceal_scale=self.conceal_scale,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TokenPatchEncoder":
        """Also reads a config saved before ``conceal_scale`` kept its name ("blend")."""
        return super().from_config(renamed_setting(config, "blend", "conceal_scale"))
