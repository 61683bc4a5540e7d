"""`SavedProgram`: a trained program with everything needed to use it again, the small
artefact users keep, share and export.

What each file of its folder holds is `arnn_tf.programs.format`'s; programs of formats 1 to 3
are read by `arnn_tf.programs.older` and saved again in the current format. Loading rebuilds
the backbone from the registry and refuses to attach the program to a network whose weights
differ from the one it was trained on.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from arnn_tf import __version__
from arnn_tf.backbones import build_backbone, weights_fingerprint
from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
from arnn_tf.modalities.encoders import encoder_class
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.programs.combined import combine_tasks
from arnn_tf.programs.format import (
    FORMAT,
    atomic_write,
    comparable_config,
    program_and_encoder,
    read_document,
    read_flip_average,
    read_learned_map,
    read_weight,
    write_arrays,
    write_document,
)
from arnn_tf.programs.mismatch import ProgramMismatchError
from arnn_tf.programs.older import map_is_learned, older_program_and_encoder
from arnn_tf.programs.parts import SavedPart, read_parts, write_parts
from arnn_tf.programs.warm_start import warm_start
from arnn_tf.tasks.base import TaskPart

__all__ = ["BackboneRef", "ProgramMismatchError", "SavedProgram"]


@dataclasses.dataclass
class BackboneRef:
    """What is needed to rebuild, and recognise, the exact backbone a program was trained on."""

    name: str
    weights: str | None
    seed: int
    fingerprint: str

    def build(self, input_size: int | None = None) -> keras.Model:
        """The backbone, taking ``input_size`` square frames (default: its registered size)."""
        return build_backbone(self.name, self.weights, seed=self.seed, input_size=input_size)


@dataclasses.dataclass
class SavedProgram:
    """A trained program with everything needed to use it again."""

    weight: np.ndarray
    program_config: dict[str, Any]
    label_groups: list[list[int]]
    backbone: BackboneRef
    task_name: str
    class_names: list[str]
    label_map_spec: str = "first"
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    arnn_tf_version: str = __version__
    parts: tuple[TaskPart, ...] = ()
    """For an older program of data sets joined as one image task (`arnn_tf.programs.combined`),
    each one's classes; else ()."""
    flip_average: bool = False
    """Whether the rebuilt model averages each image's probabilities with its mirror image's."""
    learned_map: tuple[np.ndarray, np.ndarray] | None = None
    """For a learned label map, its (kernel, bias); ``label_groups`` is then empty."""
    recipe: dict[str, Any] | None = None
    """The `arnn_tf.recipes.Recipe` it was trained with, as a dict (None before recipes)."""
    encoder: dict[str, Any] | None = None
    """The input encoder as Keras serialises it; None for a shared-program (mixed) program."""
    encoder_weights: list[np.ndarray] | None = None
    """That encoder's weights, in ``get_weights`` order (a host photo, a patch table)."""
    input_state: dict[str, Any] | None = None
    """The task's input preprocessing, as the task's ``input_state`` gives it (a text task's
    vectorizer); None for image tasks."""
    members: tuple[SavedPart, ...] = ()
    """For a shared-program (mixed) program, its parts' encoders, maps and inputs; else ()."""

    def __post_init__(self) -> None:
        _check_parts(self.parts, len(self.class_names))

    @classmethod
    def from_model(
        cls,
        model: ReprogrammedModel,
        *,
        backbone_name: str,
        weights: str | None,
        seed: int,
        task_name: str,
        class_names: list[str],
        label_map_spec: str = "first",
        metrics: dict[str, Any] | None = None,
        parts: tuple[TaskPart, ...] = (),
        recipe: dict[str, Any] | None = None,
        input_state: dict[str, Any] | None = None,
    ) -> "SavedProgram":
        """Captures a trained model; ``backbone_name``/``weights``/``seed`` say how its backbone
        was built.

        ``parts`` are the task's parts when it combines several data sets (``Task.parts``);
        ``input_state`` its input preprocessing (``task.input_state``).
        """
        config = comparable_config(model.program)
        ref = BackboneRef(backbone_name, weights, seed, weights_fingerprint(model.backbone))
        learned = isinstance(model.label_map, LinearLabelMap)
        encoder = model.encoder
        return cls(
            keras.ops.convert_to_numpy(model.program.weight.value),
            config,
            [] if learned else model.label_map.groups,
            ref,
            task_name,
            list(class_names),
            label_map_spec,
            dict(metrics or {}),
            parts=tuple(parts),
            flip_average=model.flip_average,
            learned_map=model.label_map.parameters() if learned else None,
            recipe=recipe,
            encoder=keras.saving.serialize_keras_object(encoder),
            encoder_weights=encoder.get_weights(),
            input_state=input_state,
        )

    @classmethod
    def from_shared_model(
        cls,
        model: Any,
        members: tuple[SavedPart, ...],
        *,
        backbone_name: str,
        weights: str | None,
        seed: int,
        task_name: str,
        label_map_spec: str,
        metrics: dict[str, Any] | None = None,
        parts: tuple[TaskPart, ...] = (),
        recipe: dict[str, Any] | None = None,
    ) -> "SavedProgram":
        """Captures a trained many-part `arnn_tf.models.reprogrammed.ReprogrammedModel` and its
        ``members`` (`arnn_tf.programs.parts.saved_parts`)."""
        ref = BackboneRef(backbone_name, weights, seed, weights_fingerprint(model.backbone))
        return cls(
            keras.ops.convert_to_numpy(model.program.weight.value),
            comparable_config(model.program),
            [],
            ref,
            task_name,
            [f"{m.name}/{name}" for m in members for name in m.class_names],
            label_map_spec,
            dict(metrics or {}),
            parts=tuple(parts),
            flip_average=model.flip_average,
            recipe=recipe,
            members=tuple(members),
        )

    @property
    def frame_size(self) -> int:
        """n: the program and the backbone's input are n x n x 3."""
        return int(self.program_config["frame_size"])

    def build_backbone(self) -> keras.Model:
        """A fresh copy of the backbone this program was trained on, at the program's frame size."""
        return self.backbone.build(input_size=self.frame_size)

    @property
    def modality(self) -> str:
        """What the program reads: its encoder's modality ("image", "text"), or "mixed" for a
        program whose parts read inputs of their own."""
        return "mixed" if self.members else encoder_class(self.encoder).modality

    @property
    def task_image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images an image program takes."""
        config = {} if self.members else self.encoder["config"]
        if "task_image_shape" not in config:
            raise ValueError(
                f"program for task {self.task_name!r} reads its inputs through input encoders "
                "(text, or parts of their own), not images of one shape"
            )
        height, width, channels = config["task_image_shape"]
        return int(height), int(width), int(channels)

    def part_class_names(self, part: TaskPart) -> list[str]:
        """The class names of one part, without the "PART/" prefix the combined task gives them."""
        names = self.class_names[part.first_class : part.first_class + part.num_classes]
        return [name.removeprefix(f"{part.name}/") for name in names]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the folder; each file is replaced atomically, so an interrupted save never
        leaves half a file."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_arrays(path, self.weight, self.learned_map, self.encoder_weights, self.input_state)
        write_parts(path, self.members, atomic_write)
        write_document(path, self._document())
        return path

    def _document(self) -> dict[str, Any]:
        """What ``program.json`` holds."""
        task: dict[str, Any] = {"name": self.task_name, "modality": self.modality}
        task.update(class_names=self.class_names, parts=[dataclasses.asdict(p) for p in self.parts])
        document = {
            "format": FORMAT,
            "format_version": 5 if self.members else 4,
            "arnn_tf_version": self.arnn_tf_version,
            "backbone": dataclasses.asdict(self.backbone),
            "program_layer": "FrameProgram",
            "program": self.program_config,
            "label_map": {"spec": self.label_map_spec, "groups": self.label_groups},
            "inference": {"flip_average": self.flip_average},
            "task": task,
            "metrics": self.metrics,
        }
        if self.encoder:
            document["encoder"] = self.encoder
        if self.members:
            document["members"] = [member.description() for member in self.members]
        if self.recipe is not None:
            document["recipe"] = self.recipe
        return document

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SavedProgram":
        """Reads a saved-program folder (any format from 1 on), with clear errors for
        anything that is not one."""
        path = Path(path)
        document = read_document(path)
        task = document["task"]
        current = program_and_encoder(path, document)
        program_config, (encoder, encoder_weights, input_state) = (
            current if current is not None else older_program_and_encoder(path, document)
        )
        return cls(
            weight=read_weight(path, document),
            program_config=program_config,
            label_groups=document["label_map"]["groups"],
            backbone=BackboneRef(**document["backbone"]),
            task_name=task["name"],
            class_names=task["class_names"],
            label_map_spec=document["label_map"]["spec"],
            metrics=document.get("metrics", {}),
            arnn_tf_version=document.get("arnn_tf_version", "unknown"),
            parts=tuple(TaskPart(**part) for part in task.get("parts", [])),
            flip_average=read_flip_average(path, document),
            learned_map=read_learned_map(path) if map_is_learned(document) else None,
            recipe=document.get("recipe"),
            encoder=encoder,
            encoder_weights=encoder_weights,
            input_state=input_state,
            members=read_parts(path, document.get("members", [])),
        )

    def build_model(self, backbone: keras.Model | None = None) -> ReprogrammedModel:
        """Rebuilds the model with this program, on ``backbone`` or a freshly built one.

        Raises ProgramMismatchError when the backbone is not the one the program was trained on.
        """
        if backbone is None:
            backbone = self.build_backbone()
        self.check_backbone(backbone)
        if self.members:
            return self._shared_model(backbone)
        encoder = keras.saving.deserialize_keras_object(self.encoder)
        encoder.set_weights(self.encoder_weights)
        program = FrameProgram(**self.program_config, mask=encoder.program_mask)
        model = ReprogrammedModel(
            program, backbone, self._label_map(backbone), encoder, flip_average=self.flip_average
        )
        program.weight.assign(self.weight)
        return model

    def _shared_model(self, backbone: keras.Model) -> ReprogrammedModel:
        """The shared-program model of a mixed program, its parts rebuilt from their files."""
        encoders = [member.build_encoder() for member in self.members]
        program = FrameProgram(**self.program_config, masks=[e.program_mask for e in encoders])
        outputs = int(backbone.output_shape[-1])
        maps = [m.build_label_map(outputs, f"part{i}_map") for i, m in enumerate(self.members)]
        model = ReprogrammedModel(program, backbone, maps, encoders, self.flip_average)
        program.weight.assign(self.weight)
        return model

    def matching_task(self, task: Any) -> Any:
        """``task`` as this program reads it, after checking it reads the same inputs (images
        of the program's shape, or text) and has the same classes. A text task comes back
        tokenised by the vectorizer the program was trained with (its patch table is indexed
        by those ids), not by one adapted afresh; a multi-part task, each part so."""
        if not self.members:
            if self.parts and _all_images(task.part_tasks):  # an older program of joined images
                task = combine_tasks(task.part_tasks)
            return _matching(task, self.task_name, self.encoder, self.input_state, self.class_names)
        part_tasks = task.part_tasks if len(task.part_tasks) > 1 else ()
        if len(part_tasks) != len(self.members):
            raise ProgramMismatchError(
                f"task {task.name!r} has {len(part_tasks) or 'no'} parts with inputs of their own; "
                f"the program of task {self.task_name!r} has {len(self.members)}"
            )
        matched = [
            _matching(part_task, part.name, part.encoder, part.input_state, part.class_names)
            for part, part_task in zip(self.members, part_tasks)
        ]
        return dataclasses.replace(task, part_tasks=tuple(matched))

    def _label_map(self, backbone: keras.Model) -> LabelMapping | LinearLabelMap:
        if self.learned_map is None:
            return LabelMapping(self.label_groups)
        label_map = LinearLabelMap(len(self.class_names), int(backbone.output_shape[-1]))
        label_map.set_parameters(*self.learned_map)
        return label_map

    def warm_start(self, model: ReprogrammedModel, *, relabel: bool = False) -> None:
        """Gives ``model`` this program's ``W`` (`arnn_tf.programs.warm_start.warm_start`)."""
        warm_start(self, model, relabel=relabel)

    def check_backbone(self, backbone: keras.Model) -> None:
        """Raises ProgramMismatchError unless ``backbone`` is the network (and frame size)
        this program was trained on."""
        if tuple(backbone.input_shape[1:3]) != (self.frame_size, self.frame_size):
            raise ProgramMismatchError(
                f"this program is {self.frame_size}x{self.frame_size}, "
                "but the backbone given takes "
                f"{backbone.input_shape[1]}x{backbone.input_shape[2]} frames; build it with "
                f"input_size={self.frame_size}"
            )
        fingerprint = weights_fingerprint(backbone)
        if backbone.name != self.backbone.name or fingerprint != self.backbone.fingerprint:
            raise ProgramMismatchError(
                f"this program was trained on backbone {self.backbone.name!r} with weights "
                f"{self.backbone.weights!r} (fingerprint {self.backbone.fingerprint[:12]}), "
                f"but the backbone given is {backbone.name!r} (fingerprint {fingerprint[:12]}); "
                "a program only works on "
                "the exact network it was trained on"
            )


def _matching(
    task: Any,
    name: str,
    encoder: dict[str, Any],
    input_state: dict[str, Any] | None,
    class_names: list[str],
) -> Any:
    """``task`` checked against a program (or part) trained on task ``name`` through the
    serialised input ``encoder``, with ``input_state`` and these classes; then as the program
    reads it (`with_input_state`: a text task tokenised by the program's vectorizer)."""
    wanted = encoder_class(encoder).input_description(encoder["config"])
    given = task.input_description
    if given != wanted or list(task.class_names) != list(class_names):
        raise ProgramMismatchError(
            f"task {task.name!r} ({given}, {task.num_classes} classes) does not match "
            f"the program's task {name!r} ({wanted}, {len(class_names)} classes)"
        )
    return task.with_input_state(input_state)


def _all_images(tasks: tuple[Any, ...]) -> bool:
    """Whether ``tasks`` are several image tasks (which an older program joined as one)."""
    return len(tasks) > 1 and all(task.modality == "image" for task in tasks)


def _check_parts(parts: tuple[TaskPart, ...], num_classes: int) -> None:
    """Parts, if any, must split the classes into consecutive ranges of at least one class."""
    if not parts:
        return
    starts = [part.first_class for part in parts]
    ends = [part.first_class + part.num_classes for part in parts]
    if (
        starts[0] != 0
        or ends[-1] != num_classes
        or starts[1:] != ends[:-1]
        or any(part.num_classes < 1 for part in parts)
    ):
        raise ValueError(
            f"the task's parts {[dataclasses.astuple(p) for p in parts]} do not split its "
            f"{num_classes} classes into consecutive, non-empty ranges"
        )
