"""The saved-program format: the small artefact users keep, share and export.

A trained program is a few hundred kilobytes (``W`` plus settings), while the backbone is
many megabytes that every user can rebuild. A saved program is a folder with

- ``program.json``: format version, arnn-tf version, the backbone's name, weights source,
  seed and a sha256 fingerprint of its weights, the program layer's settings, the label
  map, the task's name, modality (what it reads: "image", "text", "mixed") and class
  names (and, for a multi-task program, its parts: each data set's name, first class and
  number of classes), how it answers at inference (``flip_average``: averaged with each
  image's mirror image, see `arnn_tf.models.reprogrammed.ReprogrammedModel`), and the run's metrics;
- ``W.npy``: the program weight, read back with ``allow_pickle=False``;
- ``label_map.npz``, for a learned label map (`arnn_tf.layers.label_mapping.LinearLabelMap`)
  only: its ``kernel`` and ``bias``, read back the same way;
- the input encoder (format 4: an image task's placement,
  `arnn_tf.modalities.image.placement.ImagePlacement`, its concealment in a host photo,
  `ConcealedPlacement`, or text's token patches, `arnn_tf.modalities.text`) as Keras serialises
  it in ``program.json``, its weights, if it has any, in ``encoder.npz`` (the host photo, the patch
  table), and the task's input preprocessing in ``input.json`` (the `TextVectorization`'s
  settings and vocabulary, so the same texts give the same token ids); ``W`` is a
  `arnn_tf.layers.frame_program.FrameProgram`'s.

Image programs of formats 1 to 3 (placement, or concealment, and program in one layer, with
a concealed program's host photo in ``host_image.npy``) are read as the encoder and frame
program that give the same ``X_adv``, and saved again in format 4.

Nothing is pickled. Loading rebuilds the backbone from the registry and refuses to attach
the program to a network whose weights differ from the one it was trained on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from arnn_tf import __version__
from arnn_tf.backbones import build_backbone, weights_fingerprint
from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
from arnn_tf.modalities.encoders import encoder_class
from arnn_tf.modalities.image.model import concealment_and_program, image_placement_and_program
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.programs.combined import combine_tasks
from arnn_tf.programs.parts import SavedPart, read_parts, write_parts
from arnn_tf.tasks.base import TaskPart

FORMAT = "arnn-tf-program"
FORMAT_VERSION = 5
"""The newest format this arnn-tf reads. A program is written in the oldest format that holds
it: 4 for a program behind its input encoder, 5 for a program shared by parts with encoders of
their own (a mixed task: `arnn_tf.programs.parts`). Formats 1 to 3 are read, not written."""

HOST_IMAGE_FILE = "host_image.npy"
LEARNED_MAP_FILE = "label_map.npz"
ENCODER_FILE = "encoder.npz"
INPUT_FILE = "input.json"


class ProgramMismatchError(ValueError):
    """The program was trained on a different backbone, weights or task."""


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
        config = _comparable_config(model.program)
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
            _comparable_config(model.program),
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
        _atomic_write(
            path / "W.npy", lambda f: np.save(f, self.weight.astype("float32"), allow_pickle=False)
        )
        (path / HOST_IMAGE_FILE).unlink(missing_ok=True)  # a format-2 program's, now the encoder's
        arrays = None
        if self.learned_map is not None:
            kernel, bias = self.learned_map
            arrays = {"kernel": kernel.astype("float32"), "bias": bias.astype("float32")}
        _write_or_remove(path / LEARNED_MAP_FILE, arrays, lambda f, a: np.savez(f, **a))
        arrays = None
        if self.encoder_weights:  # a plain image placement has none: no file
            arrays = {str(i): np.asarray(w) for i, w in enumerate(self.encoder_weights)}
        _write_or_remove(path / ENCODER_FILE, arrays, lambda f, a: np.savez(f, **a))
        _write_or_remove(
            path / INPUT_FILE, self.input_state, lambda f, a: f.write(json.dumps(a).encode())
        )
        write_parts(path, self.members, _atomic_write)
        _atomic_write(
            path / "program.json",
            lambda f: f.write(json.dumps(self._document(), indent=2).encode()),
        )
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
        """Reads a saved-program folder, with clear errors for anything that is not one."""
        path = Path(path)
        try:
            document = json.loads((path / "program.json").read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is not a saved program (no program.json)") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path / 'program.json'} is not valid JSON: {error}") from None
        if document.get("format") != FORMAT or document.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{path} holds format {document.get('format')!r} version "
                f"{document.get('format_version')!r}; "
                f"this arnn-tf reads {FORMAT} <= {FORMAT_VERSION}"
            )
        weight = np.load(path / "W.npy", allow_pickle=False)
        expected = (document["program"]["frame_size"],) * 2 + (3,)
        if weight.shape != expected:
            raise ValueError(f"{path / 'W.npy'} has shape {weight.shape}, expected {expected}")
        task = document["task"]
        flip_average = document.get("inference", {}).get("flip_average", False)
        if not isinstance(flip_average, bool):
            raise ValueError(
                f"{path / 'program.json'}: inference.flip_average must be true or false, "
                f"not {flip_average!r}"
            )
        program_config, encoder = _program_and_encoder(path, document)
        return cls(
            weight,
            program_config,
            document["label_map"]["groups"],
            BackboneRef(**document["backbone"]),
            task["name"],
            task["class_names"],
            document["label_map"]["spec"],
            document.get("metrics", {}),
            document.get("arnn_tf_version", "unknown"),
            tuple(TaskPart(**part) for part in task.get("parts", [])),
            flip_average,
            _load_learned_map(path) if _learned(document) else None,
            document.get("recipe"),
            *encoder,
            read_parts(path, document.get("members", [])),
        )

    def build_model(self, backbone: keras.Model | None = None) -> ReprogrammedModel:
        """Rebuilds the model with this program, on ``backbone`` or a freshly built one.

        Raises ProgramMismatchError when the backbone is not the one the program was trained on.
        """
        if backbone is None:
            backbone = self.build_backbone()
        self._check_backbone(backbone)
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
        """Gives ``model`` this program's ``W``, so training continues from it (a further
        schedule after a finished run, or fine-tuning) instead of from zero.

        ``model`` must be built on the same backbone with the same program settings (the
        weight of ``||W||^2`` may differ) and, unless ``relabel``, the same label map. With
        ``relabel`` (a data-driven map, which training computes from the data before its first
        step) the model keeps its own map, so this program's map may differ, even in how many
        ImageNet classes each task class has. Raises ProgramMismatchError otherwise.
        """
        self._check_backbone(model.backbone)
        settings = _comparable_config(model.program)
        differing = sorted(
            key
            for key in set(settings) | set(self.program_config)
            if key != "l2" and settings.get(key) != self.program_config.get(key)
        )
        if differing:
            raise ProgramMismatchError(
                "the program to start from was trained with other program settings: "
                + ", ".join(
                    f"{key} {self.program_config.get(key)!r} (here {settings.get(key)!r})"
                    for key in differing
                )
            )
        if model.label_map.num_classes != len(self.class_names):
            raise ProgramMismatchError(
                f"the program to start from has {len(self.class_names)} task "
                f"classes, this model {model.label_map.num_classes}"
            )
        if isinstance(model.label_map, LinearLabelMap):
            if self.learned_map is not None:  # a fixed map's program starts the model's own map
                model.label_map.set_parameters(*self.learned_map)
        elif not relabel and (
            self.learned_map is not None or model.label_map.groups != self.label_groups
        ):
            raise ProgramMismatchError(
                f"the program to start from was trained with label map "
                f"{self.label_map_spec!r}; train with the same map"
            )
        self._warm_start_encoder(model)
        model.program.weight.assign(self.weight)

    def _warm_start_encoder(self, model: ReprogrammedModel) -> None:
        """Gives ``model``'s input encoder this program's weights (a text program's table);
        the encoders must be alike, tables of the same size (same vocabulary size), and their
        fixed weights (a host photo) equal."""
        here = keras.saving.serialize_keras_object(model.encoder)
        saved = self.encoder
        if here["class_name"] != saved["class_name"]:
            raise ProgramMismatchError(
                f"the program to start from reads its inputs through {saved['class_name']}, "
                f"this model through {here['class_name']}"
            )
        here, saved = _settings(here["config"]), _settings(saved["config"])
        differing = sorted(k for k in set(here) | set(saved) if here.get(k) != saved.get(k))
        if differing:
            raise ProgramMismatchError(
                "the program to start from has another input encoder: "
                + ", ".join(f"{k} {saved.get(k)!r} (here {here.get(k)!r})" for k in differing)
            )
        for variable, value in zip(model.encoder.weights, self.encoder_weights):
            fixed = not variable.trainable  # only fixed weights are compared, not the table
            if fixed and not np.array_equal(keras.ops.convert_to_numpy(variable.value), value):
                raise ProgramMismatchError(
                    f"the program to start from has another {variable.name} in its input "
                    "encoder (a host photo is fixed, not trained)"
                )
        model.encoder.set_weights(self.encoder_weights)

    def _check_backbone(self, backbone: keras.Model) -> None:
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


def _has(path: Path, name: str) -> bool:
    return (path / name).is_file()


def _learned(document: dict[str, Any]) -> bool:
    """Whether a program's map is learned: from format 3 on, a map saved without groups."""
    version = document.get("format_version", 1)
    return version >= 3 and not document["label_map"]["groups"] and "members" not in document


def _program_and_encoder(
    path: Path, document: dict[str, Any]
) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The frame program's settings and (encoder config, its weights, the input state) of a
    program; formats 1 to 3 converted to the encoder and frame program of the same X_adv."""
    layer = document.get("program_layer", "AdversarialProgram")
    config = document["program"]
    if layer == "AdversarialProgram":  # formats 1 and 3
        encoder, program = image_placement_and_program(**config)
    elif layer == "ConcealedProgram":  # format 2
        expected = (config["frame_size"],) * 2 + (3,)
        encoder, program = concealment_and_program(
            config["frame_size"],
            config["task_image_shape"],
            _load_host_image(path, expected),
            config["scale"],
            config["permutation_seed"],
            config.get("l2", 0.0),
        )
    elif layer == "FrameProgram":  # saved before the frame program could skip its clip
        return {"clip": True, **config}, _load_encoder(path, document)
    else:
        raise ValueError(f"{path / 'program.json'}: unknown program layer {layer!r}")
    serialized = keras.saving.serialize_keras_object(encoder)
    return _comparable_config(program), (serialized, encoder.get_weights(), None)


def _load_encoder(
    path: Path, document: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[np.ndarray] | None, dict[str, Any] | None]:
    """(encoder config, its weights, the input state) of a format-4 program; Nones for a
    mixed program (format 5), whose parts keep theirs."""
    if "encoder" not in document:
        return None, None, None
    try:
        encoder_class(document["encoder"])
    except ValueError as error:
        raise ValueError(f"{path / 'program.json'}: {error}") from None
    try:
        weights = []
        if _has(path, ENCODER_FILE) or _encoder_has_weights(document["encoder"]):
            with np.load(path / ENCODER_FILE, allow_pickle=False) as arrays:
                weights = [arrays[str(i)] for i in range(len(arrays.files))]
        state = json.loads((path / INPUT_FILE).read_text()) if _has(path, INPUT_FILE) else None
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} holds a program behind an input encoder but no {Path(error.filename).name}"
        ) from None
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{path}: the input encoder's files are unreadable: {error}") from None
    return document["encoder"], weights, state


def _load_host_image(path: Path, expected: tuple[int, ...]) -> np.ndarray:
    """A format-2 (concealed) program's host photo, checked to be ``expected``'s shape."""
    try:
        host_image = np.load(path / HOST_IMAGE_FILE, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} holds a concealed program but no {HOST_IMAGE_FILE} "
            "(the host photo it is hidden in)"
        ) from None
    if host_image.shape != expected:
        raise ValueError(
            f"{path / HOST_IMAGE_FILE} has shape {host_image.shape}, expected {expected}"
        )
    return host_image


def _encoder_has_weights(encoder: dict[str, Any]) -> bool:
    """Whether the serialised input encoder has weights to read (an image placement has none)."""
    return bool(keras.saving.deserialize_keras_object(encoder).weights)


def _load_learned_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) from a program folder's ``label_map.npz``, with clear errors."""
    try:
        with np.load(path / LEARNED_MAP_FILE, allow_pickle=False) as arrays:
            kernel, bias = arrays["kernel"], arrays["bias"]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} holds a program with a learned label map but no {LEARNED_MAP_FILE}"
        ) from None
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{path / LEARNED_MAP_FILE} is not a learned label map: {error}") from None
    if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
        raise ValueError(
            f"{path / LEARNED_MAP_FILE}: kernel {kernel.shape} and bias {bias.shape} "
            "do not fit together"
        )
    return kernel, bias


def _comparable_config(program: keras.layers.Layer) -> dict[str, Any]:
    """The program layer's settings as saved (without Keras' own name, trainable, dtype)."""
    return json.loads(json.dumps(_settings(program.get_config())))  # tuples become lists


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """A layer config without Keras' own name, trainable and dtype: what a warm start compares
    (a run with W frozen saves its layers untrainable, and the next run may train them)."""
    return {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")}


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


def _write_or_remove(path: Path, value: Any, write: Any) -> None:
    """Writes ``value`` to ``path`` with ``write(file, value)``, atomically; with None removes
    ``path``, which a program of another kind saved to the same folder may have left."""
    if value is None:
        path.unlink(missing_ok=True)
    else:
        _atomic_write(path, lambda f: write(f, value))


def _atomic_write(path: Path, write: Any) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        write(f)
    os.replace(f.name, path)
