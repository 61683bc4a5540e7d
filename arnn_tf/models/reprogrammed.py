"""`ReprogrammedModel`: task input -> input encoder -> frame program -> backbone -> label map.

A functional Keras model (the keras-hub pattern: a `keras.Model` subclass that builds its own
graph), so `compile`, `fit`, `evaluate`, `predict`, `save` and `keras.saving.load_model` work
as for any Keras model. Only the program's ``W``, an input encoder's own weights (a text
encoder's patch table) and a learned label map are trainable.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from arnn_tf.label_maps.specs import learned_map_start, parse_label_map
from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
from arnn_tf.settings import DEFAULT_LEARNING_RATE


class DefaultCompile:
    """`compile` with the paper's defaults, for the reprogrammed model classes (a mixin)."""

    def compile(
        self, optimizer: Any = "auto", loss: Any = "auto", metrics: Any = "auto", **kwargs: Any
    ) -> None:
        """Compiles with the paper's defaults where "auto": Adam(0.05), cross-entropy, accuracy.

        The ``lambda * ||W||^2`` term is the program weight's regulariser, so Keras adds it
        to whatever loss is given.
        """
        super().compile(**compile_defaults(optimizer, loss, metrics), **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Restores the compile state saved in a `.keras` file through this class's `compile`."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)


@keras.saving.register_keras_serializable(package="arnn_tf")
class ReprogrammedModel(DefaultCompile, keras.Model):
    """Reprograms ``backbone`` for a task with ``label_map.num_classes`` classes.

    Inputs are whatever the ``encoder`` takes (a layer with a ``model_input()`` method and a
    ``program_mask``: task images for an `arnn_tf.modalities.image.placement.ImagePlacement` or a
    `ConcealedPlacement`, token ids for an `arnn_tf.modalities.text.TokenPatchEncoder`), turned
    into a frame it hands to the `FrameProgram`. Outputs are the task-class probabilities.

    With ``flip_average`` the model answers at inference (``training`` false: `evaluate`,
    `predict`, a SavedModel's signatures) with the mean of its probabilities for each image
    and for that image's left-right mirror image, at twice the cost; training steps still see
    one view. This suits tasks whose classes do not change under a mirror (natural photos such
    as CIFAR-10), not digits or text.
    """

    def __init__(
        self,
        program: FrameProgram,
        backbone: keras.Model,
        label_map: LabelMapping | LinearLabelMap,
        encoder: keras.layers.Layer,
        flip_average: bool = False,
        **kwargs: Any,
    ) -> None:
        frame = tuple(backbone.input_shape[1:])
        if frame != (program.frame_size, program.frame_size, 3):
            raise ValueError(
                f"the program is made for {program.frame_size}x{program.frame_size} inputs "
                f"but backbone {backbone.name!r} takes {frame}"
            )
        if flip_average and not hasattr(encoder, "mirror"):
            raise ValueError(
                f"flip_average averages each input with its mirror image; the input encoder "
                f"{type(encoder).__name__} has none (images have)"
            )
        backbone.trainable = False
        program.set_masks([encoder.program_mask])  # the encoder's; a config does not keep it
        inputs = encoder.model_input()
        probabilities = label_map(part_logits(encoder, program, backbone, inputs))
        super().__init__(inputs=inputs, outputs=probabilities, **kwargs)
        self.program = program
        self.encoder = encoder
        self.backbone = backbone
        self.label_map = label_map
        self.flip_average = bool(flip_average)

    @property
    def encoders(self) -> list[keras.layers.Layer]:
        """The model's input encoders: its one (a shared-program model has one per part)."""
        return [self.encoder]

    @property
    def label_maps(self) -> list[LabelMapping | LinearLabelMap]:
        """The model's label maps: its one (a shared-program model has one per part)."""
        return [self.label_map]

    def adversarial_inputs(self, inputs: Any) -> Any:
        """``X_adv``, the frames the backbone sees for ``inputs``: encoded, then programmed."""
        return self.program(self.encoder(inputs))

    def logits(self, inputs: Any) -> Any:
        """The frozen backbone's outputs for ``inputs`` under the current program, before the
        label map (what data-driven maps and part signatures read)."""
        return part_logits(self.encoder, self.program, self.backbone, inputs)

    def call(self, inputs: Any, training: Any = None, mask: Any = None, **kwargs: Any) -> Any:
        """Runs the graph in inference mode whatever ``training`` says: the backbone is frozen,
        and Keras 3 hands the outer call's ``training`` to every layer of the graph (overriding
        the ``training=False`` it was built with), which would switch on the backbone's dropout
        and stochastic depth while the program trains. The program and label map have no
        training-only behaviour. ``training`` decides only whether ``flip_average`` applies."""

        def probabilities_of(images: Any) -> Any:
            return super(ReprogrammedModel, self).call(images, training=False, mask=mask, **kwargs)

        if self.flip_average and not training:
            return average_with_mirror(probabilities_of, self.encoder, inputs)
        return probabilities_of(inputs)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "program": keras.saving.serialize_keras_object(self.program),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "label_map": keras.saving.serialize_keras_object(self.label_map),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "flip_average": self.flip_average,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ReprogrammedModel":
        config = dict(config)
        parts = {
            key: keras.saving.deserialize_keras_object(config.pop(key))
            for key in ("program", "backbone", "label_map", "encoder")
        }
        return cls(**parts, **config)


def part_logits(
    encoder: keras.layers.Layer,
    program: FrameProgram,
    backbone: keras.Model,
    inputs: Any,
    part: int = 0,
) -> Any:
    """encoder -> frame program (mask ``part``) -> frozen backbone: the one composition every
    model and signature uses; a label map reads the task classes off what it returns."""
    return backbone(program(encoder(inputs), part=part), training=False)


def compile_defaults(optimizer: Any, loss: Any, metrics: Any) -> dict[str, Any]:
    """`compile`'s arguments with the paper's defaults where "auto": Adam(0.05),
    cross-entropy on the task probabilities, accuracy."""
    if optimizer == "auto":
        optimizer = keras.optimizers.Adam(DEFAULT_LEARNING_RATE)
    if loss == "auto":
        loss = keras.losses.SparseCategoricalCrossentropy()
    if metrics == "auto":
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return {"optimizer": optimizer, "loss": loss, "metrics": metrics}


def average_with_mirror(
    probabilities_of: Callable[[Any], Any], encoder: keras.layers.Layer, inputs: Any
) -> Any:
    """The mean of ``probabilities_of`` the inputs and of their mirror images, as the input
    ``encoder`` mirrors them: `ReprogrammedModel`'s ``flip_average``."""
    return (probabilities_of(inputs) + probabilities_of(encoder.mirror(inputs))) / 2


def build_label_map(
    spec: str, num_classes: int, seed: int = 0, num_source: int = 1000, name: str | None = None
) -> LabelMapping | LinearLabelMap:
    """The label-map layer a spec names (`arnn_tf.settings.LABEL_MAP_HELP`): a fixed
    `LabelMapping`, or for "linear[:START]" a `LinearLabelMap` starting from START; called
    ``name`` (default "label_mapping")."""
    start = learned_map_start(spec)
    names = {} if name is None else {"name": name}
    if start is None:
        groups = parse_label_map(spec, num_classes, seed=seed, num_source=num_source)
        return LabelMapping(groups, **names)
    groups = parse_label_map(start, num_classes, seed, num_source) if start else None
    return LinearLabelMap(num_classes, num_source, initial_groups=groups, seed=seed, **names)
