"""`PartLabelMaps`: every part's label map over a batch stacked part by part, in a few
operations whatever the number of parts.

A model of several parts runs the backbone once on a batch holding some rows of each part, in
part order. Reading each part's rows through its own map would take a few operations a part
(a hundred parts: hundreds of small operations a step, and their gradients). Instead every
map's class scores are computed on all rows at once (the fixed maps' in one gather and one
matrix product, the learned maps' in one matrix product), and each row's softmax runs over
its own part's classes alone: the answer of part i's map, in the columns of part i's classes,
zero elsewhere, so a many-part model's cross-entropy and accuracy are a one-part model's.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap


class PartLabelMaps(keras.layers.Layer):
    """Reads each row of a batch stacked in part order off its part's label map (a
    `LabelMapping` or a `LinearLabelMap`): probabilities ``[rows, all parts' classes]``.

    The maps stay the parts' own layers (a data-driven map replaces one map's groups, a saved
    program keeps one map's kernel); this layer only reads their variables. It is built by the
    model from its maps and not serialised on its own.
    """

    def __init__(self, label_maps: Sequence[Any], **kwargs: Any) -> None:
        kwargs.setdefault("name", "part_label_maps")
        super().__init__(**kwargs)
        self.maps = list(label_maps)
        sizes = [m.num_classes for m in self.maps]
        self.class_part = np.repeat(np.arange(len(sizes)), sizes).astype("int32")
        self.fixed = [i for i, m in enumerate(self.maps) if isinstance(m, LabelMapping)]
        self.learned = [i for i, m in enumerate(self.maps) if isinstance(m, LinearLabelMap)]
        if len(self.fixed) + len(self.learned) != len(self.maps):
            raise ValueError("every part's label map must be a LabelMapping or a LinearLabelMap")
        firsts = np.cumsum([0, *sizes])
        columns = [np.arange(firsts[i], firsts[i + 1]) for i in self.fixed + self.learned]
        self.order = np.argsort(np.concatenate(columns)).astype("int32")
        fixed_maps = [self.maps[i] for i in self.fixed]
        self.source_part = np.concatenate(
            [np.full(sum(m.group_sizes), i, "int32") for i, m in zip(self.fixed, fixed_maps)]
            or [np.zeros(0, "int32")]
        )
        self.membership = _block_diagonal([m.membership for m in fixed_maps])

    def build(self, logits_shape: Any, part_inputs_shape: Any) -> None:
        """Nothing to build: the maps' variables are the maps' own."""
        self.built = True

    def call(self, logits: Any, part_inputs: Sequence[Any]) -> Any:
        """``logits`` of the rows of every part's input in ``part_inputs``, in part order."""
        sizes = ops.stack([ops.shape(x)[0] for x in part_inputs])
        return self.answers(logits, row_parts(sizes, ops.shape(logits)[0]))

    def answers(self, logits: Any, parts: Any) -> Any:
        """Each row's probabilities over its part's classes (``parts[r]``: row r's part), in
        those classes' columns, zero elsewhere."""
        mine = ops.equal(ops.expand_dims(parts, 1), ops.expand_dims(self.class_part, 0))
        scores = ops.where(mine, self.scores(logits, parts), -1e9)
        return ops.softmax(scores, axis=-1) * ops.cast(mine, "float32")

    def scores(self, logits: Any, parts: Any) -> Any:
        """Every part's class scores for every row ([rows, all classes]): a fixed map's class
        a logsumexp over its ImageNet classes, a learned map's its logit; a row's own part's
        scores are exact, the others' (which that row's softmax leaves out) only bounded."""
        logits = ops.cast(logits, "float32")
        blocks = []
        if self.fixed:
            indices = ops.concatenate([self.maps[i].source_indices for i in self.fixed])
            mapped = ops.take(logits, indices, axis=-1)
            own = ops.equal(ops.expand_dims(parts, 1), ops.expand_dims(self.source_part, 0))
            top = ops.max(ops.where(own, mapped, -1e30), axis=-1, keepdims=True)
            exp = ops.exp(ops.minimum(mapped - top, 0.0))
            blocks.append(ops.log(ops.matmul(exp, self.membership) + 1e-30) + top)
        if self.learned:
            maps = [self.maps[i] for i in self.learned]
            kernel = ops.concatenate([m.stored_kernel * m.rate_scale for m in maps], axis=1)
            bias = ops.concatenate([m.stored_bias * m.rate_scale for m in maps])
            blocks.append(ops.matmul(logits, kernel) + bias)
        scores = blocks[0] if len(blocks) == 1 else ops.concatenate(blocks, axis=-1)
        return ops.take(scores, self.order, axis=-1)

    def compute_output_shape(self, logits_shape: Any, part_inputs_shape: Any) -> tuple[Any, ...]:
        return (logits_shape[0], len(self.class_part))


def row_parts(sizes: Any, rows: Any) -> Any:
    """The part of each of ``rows`` rows stacked in part order, ``sizes[i]`` of part i."""
    ends = ops.cumsum(ops.cast(sizes, "int32"))
    index = ops.expand_dims(ops.arange(rows, dtype="int32"), 1)
    return ops.sum(ops.cast(index >= ops.expand_dims(ends, 0), "int32"), axis=1)


def _block_diagonal(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """The matrices ``blocks`` along the diagonal of one (zeros elsewhere)."""
    rows, columns = sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)
    matrix = np.zeros((rows, columns), "float32")
    r = c = 0
    for block in blocks:
        matrix[r : r + block.shape[0], c : c + block.shape[1]] = block
        r, c = r + block.shape[0], c + block.shape[1]
    return matrix
