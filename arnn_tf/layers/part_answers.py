"""The rows of a batch stacked part by part: `PartRows` splits the backbone's outputs into
each part's, `PartAnswers` stacks the parts' answers into one probability matrix."""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="arnn_tf")
class PartRows(keras.layers.Layer):
    """Splits a batch stacked in part order into each part's rows, as many as each part's
    input has (so the backbone runs once on every part's frames, whatever their number)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("name", "part_rows")
        super().__init__(**kwargs)

    def call(self, stacked: Any, part_inputs: Sequence[Any]) -> list[Any]:
        rows, start = [], 0
        for x in part_inputs:
            size = ops.shape(x)[0]
            rows.append(stacked[start : start + size])
            start = start + size
        return rows

    def compute_output_shape(self, stacked_shape: Any, part_inputs_shape: Any) -> list[Any]:
        return [(None, *stacked_shape[1:]) for _ in part_inputs_shape]


@keras.saving.register_keras_serializable(package="arnn_tf")
class PartAnswers(keras.layers.Layer):
    """Stacks the parts' probabilities [batch_i, classes_i] into one [sum batch_i, all classes]
    matrix, each part's in the columns of its classes (ids offset part by part), zeros
    elsewhere: so a many-part model's cross-entropy and accuracy are a one-part model's."""

    def __init__(self, num_classes: Sequence[int], **kwargs: Any) -> None:
        kwargs.setdefault("name", "part_answers")
        super().__init__(**kwargs)
        self.num_classes = [int(c) for c in num_classes]

    def call(self, probabilities: Sequence[Any]) -> Any:
        total, first, rows = sum(self.num_classes), 0, []
        for p, count in zip(probabilities, self.num_classes):
            rows.append(ops.pad(ops.cast(p, "float32"), ((0, 0), (first, total - first - count))))
            first += count
        return ops.concatenate(rows, axis=0)

    def compute_output_shape(self, input_shapes: Sequence[Any]) -> tuple[Any, ...]:
        return (None, sum(self.num_classes))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}
