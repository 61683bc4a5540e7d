"""`SharedProgramModel`: one frame program for tasks of different inputs (text and images).

Each part has its own input encoder (`arnn_tf.modalities.image.placement.ImagePlacement`,
`arnn_tf.modalities.text.TokenPatchEncoder`, ...) and its own label map; all share one
`arnn_tf.layers.frame_program.FrameProgram` (acting where each encoder's mask lets it) and the
frozen backbone. The model takes one batch of every part and answers with one probability matrix:
part i's rows hold its probabilities in the columns of its classes (ids offset part by part,
as a `arnn_tf.tasks.mixed.MixedTask` labels them) and zeros elsewhere, so `compile`, `fit`,
the cross-entropy and the accuracy work as for a one-input model. `part_model(i)` is part i
alone, for evaluation and serving.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.models.reprogrammed import DefaultCompile, part_logits


@keras.saving.register_keras_serializable(package="arnn_tf")
class PartAnswers(keras.layers.Layer):
    """Stacks the parts' probabilities [batch_i, classes_i] into one [sum batch_i, all classes]
    matrix, each part's in the columns of its classes."""

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


@keras.saving.register_keras_serializable(package="arnn_tf")
class SharedProgramModel(DefaultCompile, keras.Model):
    """Parts' inputs -> their encoders -> one shared frame program -> backbone -> their maps.

    ``program.masks[i]`` must be ``encoders[i].program_mask`` (`shared_frame_program` makes
    such a program). Only W, the encoders' weights and learned maps train.
    """

    def __init__(
        self,
        program: FrameProgram,
        encoders: Sequence[keras.layers.Layer],
        backbone: keras.Model,
        label_maps: Sequence[keras.layers.Layer],
        **kwargs: Any,
    ) -> None:
        if not len(encoders) == len(label_maps) == len(program.masks) >= 2:
            raise ValueError(
                f"a shared program needs one encoder, mask and label map per part, at least two "
                f"parts; got {len(encoders)}, {len(program.masks)} and {len(label_maps)}"
            )
        backbone.trainable = False
        inputs = [_part_input(encoder, i) for i, encoder in enumerate(encoders)]
        answers = [
            label_map(part_logits(encoder, program, backbone, x, part=i))
            for i, (x, encoder, label_map) in enumerate(zip(inputs, encoders, label_maps))
        ]
        counts = [label_map.num_classes for label_map in label_maps]
        super().__init__(inputs=inputs, outputs=PartAnswers(counts)(answers), **kwargs)
        self.program = program
        self.encoders = list(encoders)
        self.backbone = backbone
        self.label_maps = list(label_maps)
        self._part_answers = answers
        self._part_inputs = inputs

    def part_model(self, part: int) -> keras.Model:
        """Part ``part`` alone: its inputs to its own classes' probabilities."""
        return keras.Model(self._part_inputs[part], self._part_answers[part])

    def adversarial_inputs(self, inputs: Sequence[Any]) -> Any:
        """``X_adv`` of every part's inputs, stacked in part order."""
        frames = [
            self.program(encoder(x), part=i)
            for i, (x, encoder) in enumerate(zip(inputs, self.encoders))
        ]
        return ops.concatenate(frames, axis=0)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "program": keras.saving.serialize_keras_object(self.program),
            "encoders": [keras.saving.serialize_keras_object(e) for e in self.encoders],
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "label_maps": [keras.saving.serialize_keras_object(m) for m in self.label_maps],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SharedProgramModel":
        encoders = [keras.saving.deserialize_keras_object(e) for e in config["encoders"]]
        program = keras.saving.deserialize_keras_object(config["program"])
        program.set_masks([encoder.program_mask for encoder in encoders])
        return cls(
            program,
            encoders,
            keras.saving.deserialize_keras_object(config["backbone"]),
            [keras.saving.deserialize_keras_object(m) for m in config["label_maps"]],
            name=config.get("name"),
        )


def _part_input(encoder: keras.layers.Layer, part: int) -> Any:
    """The encoder's model input, named after its part (input names must differ)."""
    spec = encoder.model_input()
    return keras.Input(spec.shape[1:], dtype=spec.dtype, name=f"part{part}_{spec.name}")


def shared_frame_program(
    encoders: Sequence[keras.layers.Layer], linf_bound: float | None = None, l2: float = 0.0
) -> FrameProgram:
    """A zero frame program for ``encoders``, one mask per part: each encoder's own."""
    frame = int(encoders[0].frame_size)
    masks = [np.asarray(encoder.program_mask, "float32") for encoder in encoders]
    return FrameProgram(frame, masks=masks, linf_bound=linf_bound, l2=l2)
