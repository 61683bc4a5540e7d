"""`SavedProgram`: a trained program with everything needed to use it again, the small
artefact users keep, share and export.

What each file of its folder holds is `arnn_tf.programs.format`'s; programs of formats 1 to 5
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
from arnn_tf.modalities.encoders import encoder_class
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.programs.combined import combine_tasks
from arnn_tf.programs.format import (
    FORMAT,
    FORMAT_VERSION,
    comparable_config,
    read_document,
    read_flip_average,
    read_weight,
    write_document,
    write_weight,
)
from arnn_tf.programs.mismatch import ProgramMismatchError
from arnn_tf.programs.older import older_program
from arnn_tf.programs.parts import SavedPart, read_parts, saved_parts, write_parts
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
    """A trained program with everything needed to use it again: the frame program's ``W``
    and settings, the backbone it was trained on, and its parts (one for a task of one input),
    each an input encoder, a label map and its classes."""

    weight: np.ndarray
    program_config: dict[str, Any]
    backbone: BackboneRef
    task_name: str
    parts: tuple[SavedPart, ...]
    label_map: str = "first"
    """The label-map spec it was trained with (`arnn_tf.label_maps.specs`)."""
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    arnn_tf_version: str = __version__
    joined: tuple[TaskPart, ...] = ()
    """For an older program of image data sets joined as one part (`arnn_tf.programs.combined`),
    each one's classes in that part's; else ()."""
    flip_average: bool = False
    """Whether the rebuilt model averages each image's probabilities with its mirror image's."""
    recipe: dict[str, Any] | None = None
    """The `arnn_tf.recipes.Recipe` it was trained with, as a dict (None before recipes)."""

    def __post_init__(self) -> None:
        self.parts = tuple(self.parts)
        if not self.parts:
            raise ValueError(f"the program of task {self.task_name!r} has no parts")
        if self.joined:
            _check_joined(self.joined, len(self.part.class_names))

    @classmethod
    def from_model(
        cls,
        model: ReprogrammedModel,
        *,
        class_names: list[str],
        input_state: dict[str, Any] | None = None,
        **settings: Any,
    ) -> "SavedProgram":
        """Captures a trained model of one part, with its task's ``class_names`` and input
        state (``task.input_state``); ``settings`` are `from_parts`'s."""
        parts = saved_parts(model, [settings["task_name"]], [class_names], [input_state])
        return cls.from_parts(model, parts, **settings)

    @classmethod
    def from_parts(
        cls,
        model: ReprogrammedModel,
        parts: tuple[SavedPart, ...],
        *,
        backbone_name: str,
        weights: str | None,
        seed: int,
        task_name: str,
        label_map: str = "first",
        metrics: dict[str, Any] | None = None,
        joined: tuple[TaskPart, ...] = (),
        recipe: dict[str, Any] | None = None,
    ) -> "SavedProgram":
        """Captures a trained model and its ``parts`` (`arnn_tf.programs.parts.saved_parts`);
        ``backbone_name``/``weights``/``seed`` say how its backbone was built, ``joined`` the
        data sets an older task joined as one part (``Task.parts``)."""
        ref = BackboneRef(backbone_name, weights, seed, weights_fingerprint(model.backbone))
        return cls(
            keras.ops.convert_to_numpy(model.program.weight.value),
            comparable_config(model.program),
            ref,
            task_name,
            tuple(parts),
            label_map,
            dict(metrics or {}),
            joined=tuple(joined),
            flip_average=model.flip_average,
            recipe=recipe,
        )

    @property
    def part(self) -> SavedPart:
        """A program of one part's only part."""
        if len(self.parts) != 1:
            raise ValueError(
                f"the program of task {self.task_name!r} has {len(self.parts)} parts, not one"
            )
        return self.parts[0]

    @property
    def class_names(self) -> list[str]:
        """Its classes: a part's own, or for several parts "PART/CLASS" in part order."""
        if len(self.parts) == 1:
            return list(self.part.class_names)
        return [f"{p.name}/{name}" for p in self.parts for name in p.class_names]

    @property
    def frame_size(self) -> int:
        """n: the program and the backbone's input are n x n x 3."""
        return int(self.program_config["frame_size"])

    def build_backbone(self) -> keras.Model:
        """A fresh copy of the backbone this program was trained on, at the program's frame size."""
        return self.backbone.build(input_size=self.frame_size)

    @property
    def modality(self) -> str:
        """What the program reads: its parts' modality ("image", "text"), or "mixed" for
        parts of several kinds."""
        kinds = {part.modality for part in self.parts}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def task_image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images a program of one image part takes."""
        config = self.part.encoder["config"] if len(self.parts) == 1 else {}
        if "task_image_shape" not in config:
            raise ValueError(
                f"program for task {self.task_name!r} reads its inputs through input encoders "
                "(text, or parts of their own), not images of one shape"
            )
        height, width, channels = config["task_image_shape"]
        return int(height), int(width), int(channels)

    def part_class_names(self, joined: TaskPart) -> list[str]:
        """The class names of one joined data set, without the "PART/" prefix they carry."""
        names = self.class_names[joined.first_class : joined.first_class + joined.num_classes]
        return [name.removeprefix(f"{joined.name}/") for name in names]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the folder; each file is replaced atomically, so an interrupted save never
        leaves half a file."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_weight(path, self.weight)
        write_parts(path, self.parts)
        write_document(path, self._document())
        return path

    def _document(self) -> dict[str, Any]:
        """What ``program.json`` holds."""
        task = {"name": self.task_name, "modality": self.modality}
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arnn_tf_version": self.arnn_tf_version,
            "backbone": dataclasses.asdict(self.backbone),
            "program_layer": "FrameProgram",
            "program": self.program_config,
            "label_map": {"spec": self.label_map},
            "inference": {"flip_average": self.flip_average},
            "task": {**task, "joined": [dataclasses.asdict(p) for p in self.joined]},
            "parts": [part.description() for part in self.parts],
            "metrics": self.metrics,
        }
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
        if document["format_version"] == FORMAT_VERSION:
            program_config, parts = document["program"], read_parts(path, document["parts"])
        else:
            program_config, parts = older_program(path, document)
        return cls(
            weight=read_weight(path, document),
            program_config=program_config,
            backbone=BackboneRef(**document["backbone"]),
            task_name=task["name"],
            parts=parts,
            label_map=document["label_map"]["spec"],
            metrics=document.get("metrics", {}),
            arnn_tf_version=document.get("arnn_tf_version", "unknown"),
            joined=tuple(TaskPart(**p) for p in task.get("joined", task.get("parts", []))),
            flip_average=read_flip_average(path, document),
            recipe=document.get("recipe"),
        )

    def build_model(self, backbone: keras.Model | None = None) -> ReprogrammedModel:
        """Rebuilds the model with this program, on ``backbone`` or a freshly built one.

        Raises ProgramMismatchError when the backbone is not the one the program was trained on.
        """
        if backbone is None:
            backbone = self.build_backbone()
        self.check_backbone(backbone)
        encoders = [part.build_encoder() for part in self.parts]
        program = FrameProgram(**self.program_config, masks=[e.program_mask for e in encoders])
        outputs = int(backbone.output_shape[-1])
        names = [None] if len(self.parts) == 1 else [f"part{i}_map" for i in range(len(encoders))]
        maps = [part.build_label_map(outputs, name) for part, name in zip(self.parts, names)]
        model = ReprogrammedModel(program, backbone, maps, encoders, self.flip_average)
        program.weight.assign(self.weight)
        return model

    def matching_task(self, task: Any) -> Any:
        """``task`` as this program reads it, after checking it reads the same inputs (images
        of the program's shape, or text) and has the same classes, part by part. A text task
        comes back tokenised by the vectorizer the program was trained with (its patch table
        is indexed by those ids), not by one adapted afresh."""
        part_tasks = task.part_tasks
        if len(self.parts) == 1:
            if self.joined and _all_images(part_tasks):  # an older program of joined images
                task = combine_tasks(part_tasks)
            return _matching(task, self.task_name, self.part)
        if len(part_tasks) != len(self.parts):
            given = len(part_tasks) if len(part_tasks) > 1 else "no"
            raise ProgramMismatchError(
                f"task {task.name!r} has {given} parts with inputs of their own; "
                f"the program of task {self.task_name!r} has {len(self.parts)}"
            )
        matched = [_matching(t, p.name, p) for p, t in zip(self.parts, part_tasks)]
        return dataclasses.replace(task, part_tasks=tuple(matched))

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


def _matching(task: Any, name: str, part: SavedPart) -> Any:
    """``task`` checked against a part trained on task ``name`` (its input encoder's inputs
    and its classes); then as the part reads it (`with_input_state`: a text task tokenised
    by the part's vectorizer)."""
    wanted = encoder_class(part.encoder).input_description(part.encoder["config"])
    given = task.input_description
    if given != wanted or list(task.class_names) != list(part.class_names):
        raise ProgramMismatchError(
            f"task {task.name!r} ({given}, {task.num_classes} classes) does not match "
            f"the program's task {name!r} ({wanted}, {len(part.class_names)} classes)"
        )
    return task.with_input_state(part.input_state)


def _all_images(tasks: tuple[Any, ...]) -> bool:
    """Whether ``tasks`` are several image tasks (which an older program joined as one)."""
    return len(tasks) > 1 and all(task.modality == "image" for task in tasks)


def _check_joined(parts: tuple[TaskPart, ...], num_classes: int) -> None:
    """Joined data sets must split the classes into consecutive ranges of at least one class."""
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
