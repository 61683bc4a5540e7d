"""`ReprogrammedModel`: task inputs -> input encoders -> frame program -> backbone -> label maps.

A functional Keras model (the keras-hub pattern: a `keras.Model` subclass that builds its own
graph), so `compile`, `fit`, `evaluate`, `predict`, `save` and `keras.saving.load_model` work
as for any Keras model. Only the program's ``W``, an input encoder's own weights (a text
encoder's patch table) and a learned label map are trainable.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any, Callable, Sequence

import keras
import numpy as np
from keras import ops

from arnn_tf.label_maps.specs import learned_map_start, parse_label_map
from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
from arnn_tf.layers.part_answers import PartLabelMaps
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
    """Reprograms ``backbone`` for a task of one or more parts.

    A part is an input encoder (a layer with a ``model_input()`` method and a ``program_mask``:
    task images for an `arnn_tf.modalities.image.placement.ImagePlacement` or a
    `ConcealedPlacement`, token ids for an `arnn_tf.modalities.text.TokenPatchEncoder`) and
    its label map; every part shares the one `FrameProgram` (each where its encoder's mask
    lets it act) and the frozen backbone. A one-part model takes its encoder's input and
    answers with the task-class probabilities. A model of several parts takes rows of every
    part (any number each, none included), runs the backbone once on all their frames, and
    answers with one matrix (`arnn_tf.layers.part_answers.PartLabelMaps`: part i's rows in
    the columns of its classes), so `compile`, `fit`, the cross-entropy and the accuracy work the
    same; `part_model(i)` is part i alone.

    With ``flip_average`` the model answers at inference (``training`` false: `evaluate`,
    `predict`, a SavedModel's signatures) with the mean of its probabilities for each image
    and for its left-right mirror image (a part whose input has no mirror, text, sees its
    input twice), at twice the cost; training steps still see one view. This suits classes
    that do not change under a mirror (natural photos).
    """

    def __init__(
        self,
        program: FrameProgram,
        backbone: keras.Model,
        label_maps: LabelMap | Sequence[LabelMap],
        encoders: keras.layers.Layer | Sequence[keras.layers.Layer],
        flip_average: bool = False,
        **kwargs: Any,
    ) -> None:
        label_maps, encoders = _as_parts(label_maps), _as_parts(encoders)
        _check_parts(program, backbone, label_maps, encoders, flip_average)
        backbone.trainable = False
        program.set_masks([e.program_mask for e in encoders])  # a config does not keep them
        keys = [frame_key(e, mask) for e, mask in zip(encoders, program.masks)]
        part_maps = PartLabelMaps(label_maps) if len(encoders) > 1 else None
        if len(encoders) == 1:
            x = encoders[0].model_input()
            answer = label_maps[0](part_logits(encoders[0], program, backbone, x))
            super().__init__(inputs=x, outputs=answer, **kwargs)
        else:
            inputs = [_part_input(encoder, i) for i, encoder in enumerate(encoders)]
            frames = _stacked_frames(program, encoders, inputs, keys)
            logits = backbone(frames, training=False)
            super().__init__(inputs=inputs, outputs=part_maps(logits, inputs), **kwargs)
        self.program = program
        self.backbone = backbone
        self.encoders = list(encoders)
        self.label_maps = list(label_maps)
        self.flip_average = bool(flip_average)
        self._part_maps = part_maps
        self.frame_keys = keys  # each part's `frame_key`: parts of one key frame alike

    @property
    def encoder(self) -> keras.layers.Layer:
        """A one-part model's input encoder."""
        return self._only(self.encoders, "encoder")

    @property
    def label_map(self) -> LabelMap:
        """A one-part model's label map."""
        return self._only(self.label_maps, "label map")

    def _only(self, layers: list[Any], what: str) -> Any:
        if len(layers) != 1:
            raise ValueError(f"a model of {len(layers)} parts has a {what} per part, not one")
        return layers[0]

    def part_model(self, part: int) -> keras.Model:
        """Part ``part`` alone: its inputs to its own classes' probabilities (a one-part model
        is its own part)."""
        if len(self.encoders) == 1:
            return self
        x = _part_input(self.encoders[part], part)
        return keras.Model(x, self.label_maps[part](self.logits(x, part=part)))

    def adversarial_inputs(self, inputs: Any) -> Any:
        """``X_adv``, the frames the backbone sees for ``inputs`` (a one-part model's input, or
        one batch of every part's, stacked in part order): encoded, then programmed."""
        if len(self.encoders) == 1:
            return self.program(self.encoder(inputs))
        frames = [self.program(e(x), part=i) for i, (x, e) in enumerate(zip(inputs, self.encoders))]
        return ops.concatenate(frames, axis=0)

    def logits(self, inputs: Any, part: int = 0) -> Any:
        """The frozen backbone's outputs for part ``part``'s ``inputs`` under the current
        program, before the label map (what data-driven maps and part signatures read)."""
        return part_logits(self.encoders[part], self.program, self.backbone, inputs, part=part)

    def answers(self, logits: Any, sizes: Sequence[int]) -> Any:
        """The model's answers from the backbone's outputs ``logits`` for a batch of
        ``sizes[i]`` examples of part i, in part order: each part's rows through its map."""
        if len(self.label_maps) == 1:
            return self.label_map(logits)
        parts = np.repeat(np.arange(len(sizes)), sizes).astype("int32")
        return self._part_maps.answers(logits, parts)

    def call(self, inputs: Any, training: Any = None, mask: Any = None, **kwargs: Any) -> Any:
        """Runs the graph in inference mode whatever ``training`` says: the backbone is frozen,
        and Keras 3 hands the outer call's ``training`` to every layer of the graph (overriding
        the ``training=False`` it was built with), which would switch on the backbone's dropout
        and stochastic depth while the program trains. The program and label maps have no
        training-only behaviour. ``training`` decides only whether ``flip_average`` applies."""

        def probabilities_of(images: Any) -> Any:
            return super(ReprogrammedModel, self).call(images, training=False, mask=mask, **kwargs)

        if self.flip_average and not training:
            return average_with_mirror(probabilities_of, self.encoders, inputs)
        return probabilities_of(inputs)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "program": keras.saving.serialize_keras_object(self.program),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "label_maps": [keras.saving.serialize_keras_object(m) for m in self.label_maps],
            "encoders": [keras.saving.serialize_keras_object(e) for e in self.encoders],
            "flip_average": self.flip_average,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ReprogrammedModel":
        config = dict(config)
        for one, many in (("label_map", "label_maps"), ("encoder", "encoders")):
            if one in config:  # a one-part model's config before parts
                config[many] = [config.pop(one)]
        parts = {
            key: keras.saving.deserialize_keras_object(config.pop(key))
            for key in ("program", "backbone")
        }
        for key in ("label_maps", "encoders"):
            parts[key] = [keras.saving.deserialize_keras_object(c) for c in config.pop(key)]
        return cls(**parts, **config)


LabelMap = LabelMapping | LinearLabelMap
"""A label-map layer: fixed or learned."""


def _as_parts(layers: Any) -> list[Any]:
    """``layers`` as a list of parts: a single layer is one part."""
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]


def _check_parts(
    program: FrameProgram,
    backbone: keras.Model,
    label_maps: list[Any],
    encoders: list[Any],
    flip_average: bool,
) -> None:
    """Raises ValueError when the program, backbone and parts cannot make one model."""
    frame = tuple(backbone.input_shape[1:])
    if frame != (program.frame_size, program.frame_size, 3):
        raise ValueError(
            f"the program is made for {program.frame_size}x{program.frame_size} inputs "
            f"but backbone {backbone.name!r} takes {frame}"
        )
    if not encoders or len(encoders) != len(label_maps):
        raise ValueError(
            f"a model needs one input encoder and label map per part, at least one part; "
            f"got {len(encoders)} encoders and {len(label_maps)} label maps"
        )
    if flip_average and not any(hasattr(encoder, "mirror") for encoder in encoders):
        kinds = " and ".join(sorted({type(encoder).__name__ for encoder in encoders}))
        raise ValueError(
            f"flip_average averages each input with its mirror image; the input encoder "
            f"{kinds} has none (images have)"
        )


def _part_input(encoder: keras.layers.Layer, part: int) -> Any:
    """The encoder's model input, named after its part (input names must differ)."""
    spec = encoder.model_input()
    return keras.Input(spec.shape[1:], dtype=spec.dtype, name=f"part{part}_{spec.name}")


def frame_key(encoder: keras.layers.Layer, mask: np.ndarray) -> str:
    """A key equal for parts that turn one input into the same frame: an encoder of the same
    class and settings without weights of its own (a placement), under the same program mask;
    a part whose encoder has weights (a host photo, a patch table) is its own (its id)."""
    if encoder.weights:
        return f"{id(encoder)}"
    settings = {k: v for k, v in encoder.get_config().items() if k not in ("name", "trainable")}
    digest = hashlib.sha256(np.ascontiguousarray(mask, dtype="float32").tobytes()).hexdigest()
    return f"{type(encoder).__name__} {sorted(settings.items())} {digest}"


def _stacked_frames(
    program: FrameProgram,
    encoders: Sequence[keras.layers.Layer],
    inputs: Sequence[Any],
    keys: Sequence[str],
) -> Any:
    """Every part's programmed frames, stacked in part order. Consecutive parts of one
    `frame_key` (``keys``; the N parts of a permuted data set) are encoded and programmed in
    one call, so a step's graph grows with the number of distinct encoders, not of parts."""
    frames = []
    for _, run in itertools.groupby(range(len(encoders)), key=keys.__getitem__):
        parts = list(run)
        x = (
            ops.concatenate([inputs[i] for i in parts], axis=0)
            if len(parts) > 1
            else inputs[parts[0]]
        )
        frames.append(program(encoders[parts[0]](x), part=parts[0]))
    return ops.concatenate(frames, axis=0)


def frame_program_for(
    encoders: Sequence[keras.layers.Layer],
    linf_bound: float | None = None,
    l2: float = 0.0,
    code: dict[str, int] | None = None,
    part_regions: bool = False,
) -> FrameProgram:
    """A zero frame program for ``encoders``, one mask per part: each encoder's own (``code``:
    `program_code`'s settings; ``part_regions``: each part on its own share of the frame)."""
    frame = int(encoders[0].frame_size)
    masks = [np.asarray(encoder.program_mask, "float32") for encoder in encoders]
    return FrameProgram(
        frame, masks=masks, linf_bound=linf_bound, l2=l2, part_regions=part_regions,
        **(code or {}),
    )


def program_code(recipe: Any) -> dict[str, int]:
    """`FrameProgram`'s code settings under a recipe: none, or its ``code_dimension`` and
    ``code_grid`` with the projection drawn from its seed."""
    if recipe.code_dimension is None:
        return {}
    return {
        "code_dimension": recipe.code_dimension,
        "code_seed": recipe.seed,
        "code_grid": recipe.code_grid,
    }


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
    probabilities_of: Callable[[Any], Any], encoders: Sequence[keras.layers.Layer], inputs: Any
) -> Any:
    """The mean of ``probabilities_of`` the inputs and of their mirror images, as each part's
    input encoder mirrors them (one without a mirror keeps its input): `ReprogrammedModel`'s
    ``flip_average``. ``inputs`` are a one-part model's input, or a list of each part's."""
    if isinstance(inputs, (list, tuple)):
        mirrored: Any = [_mirror(encoder, x) for encoder, x in zip(encoders, inputs)]
    else:
        mirrored = _mirror(encoders[0], inputs)
    return (probabilities_of(inputs) + probabilities_of(mirrored)) / 2


def _mirror(encoder: keras.layers.Layer, inputs: Any) -> Any:
    """``inputs`` mirrored as ``encoder`` mirrors them; unchanged for one without a mirror."""
    return encoder.mirror(inputs) if hasattr(encoder, "mirror") else inputs


def build_label_map(
    spec: str, num_classes: int, seed: int = 0, num_source: int = 1000, name: str | None = None
) -> LabelMapping | LinearLabelMap:
    """The label-map layer a spec names (`arnn_tf.settings.LABEL_MAP_HELP`): a fixed
    `LabelMapping`, or for "linear[:START]" a `LinearLabelMap` starting from START; called
    ``name`` (default "label_mapping")."""
    (label_map,) = part_label_maps(spec, [num_classes], seed, num_source, [name])
    return label_map


def part_label_maps(
    spec: str,
    part_classes: Sequence[int],
    seed: int = 0,
    num_source: int = 1000,
    names: Sequence[str | None] | None = None,
) -> list[LabelMapping | LinearLabelMap]:
    """The label maps of parts of ``part_classes`` classes each, as `build_label_map` makes
    one: the spec is read for all their classes at once and its groups split among the
    parts in order, so fixed maps give the parts disjoint ImageNet classes (with "first",
    part i its own block); a learned map per part starts from its share."""
    start, total = learned_map_start(spec), sum(part_classes)
    fixed = spec if start is None else start
    groups = parse_label_map(fixed, total, seed=seed, num_source=num_source) if fixed else None
    maps: list[LabelMapping | LinearLabelMap] = []
    first = 0
    for count, name in zip(part_classes, names or [None] * len(part_classes)):
        share = None if groups is None else groups[first : first + count]
        options = {} if name is None else {"name": name}
        first += count
        if start is None:
            maps.append(LabelMapping(share, **options))
        else:
            maps.append(LinearLabelMap(count, num_source, share, seed=seed, **options))
    return maps
