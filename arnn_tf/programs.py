"""The saved-program format: the small artefact users keep, share and export.

A trained program is a few hundred kilobytes (``W`` plus settings), while the backbone is
many megabytes that every user can rebuild. A saved program is a folder with

- ``program.json``: format version, arnn-tf version, the backbone's name, weights source,
  seed and a sha256 fingerprint of its weights, the program layer's settings, the label
  map, the task's name, image shape and class names (and, for a multi-task program, its
  parts: each data set's name, first class and number of classes), how it answers at
  inference (``flip_average``: averaged with each image's mirror image, see
  `arnn_tf.model.ReprogrammedModel`), and the run's metrics;
- ``W.npy``: the program weight, read back with ``allow_pickle=False``;
- ``host_image.npy``, for a concealed program (`arnn_tf.layers.ConcealedProgram`) only: the
  host photo's pixels, read back the same way;
- ``label_map.npz``, for a learned label map (`arnn_tf.layers.LinearLabelMap`) only: its
  ``kernel`` and ``bias``, read back the same way.

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
from arnn_tf.layers import AdversarialProgram, ConcealedProgram, LabelMapping, LinearLabelMap
from arnn_tf.model import ReprogrammedModel
from arnn_tf.tasks import Task, TaskPart

FORMAT = "arnn-tf-program"
FORMAT_VERSION = 3
"""The newest format this arnn-tf reads. A program is written in the oldest format that holds
it, so that older releases still read every program they can run: 1, 2 for a concealed
program (a release that reads only 1 would rebuild it as a plain program), 3 for a learned
label map."""

HOST_IMAGE_FILE = "host_image.npy"
LEARNED_MAP_FILE = "label_map.npz"


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
    """For a program trained on combined tasks (`arnn_tf.tasks.multi`), its data sets; else ()."""
    host_image: np.ndarray | None = None
    """For a concealed program, the host photo's pixels (n x n x 3, [0, 255]); None otherwise."""
    flip_average: bool = False
    """Whether the rebuilt model averages each image's probabilities with its mirror image's."""
    learned_map: tuple[np.ndarray, np.ndarray] | None = None
    """For a learned label map, its (kernel, bias); ``label_groups`` is then empty."""
    recipe: dict[str, Any] | None = None
    """The `arnn_tf.recipes.Recipe` it was trained with, as a dict (None before recipes)."""

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
    ) -> "SavedProgram":
        """Captures a trained model; ``backbone_name``/``weights``/``seed`` say how its backbone
        was built.

        ``parts`` are the task's parts when it combines several data sets (``Task.parts``).
        """
        config = _comparable_config(model.program)
        ref = BackboneRef(backbone_name, weights, seed, weights_fingerprint(model.backbone))
        host_image = (
            keras.ops.convert_to_numpy(model.program.host_image.value)
            if isinstance(model.program, ConcealedProgram)
            else None
        )
        learned = isinstance(model.label_map, LinearLabelMap)
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
            host_image=host_image,
            flip_average=model.flip_average,
            learned_map=model.label_map.parameters() if learned else None,
            recipe=recipe,
        )

    @property
    def frame_size(self) -> int:
        """n: the program and the backbone's input are n x n x 3."""
        return int(self.program_config["frame_size"])

    def build_backbone(self) -> keras.Model:
        """A fresh copy of the backbone this program was trained on, at the program's frame size."""
        return self.backbone.build(input_size=self.frame_size)

    @property
    def task_image_shape(self) -> tuple[int, int, int]:
        height, width, channels = self.program_config["task_image_shape"]
        return int(height), int(width), int(channels)

    def part_class_names(self, part: TaskPart) -> list[str]:
        """The class names of one part, without the "PART/" prefix the combined task gives them."""
        names = self.class_names[part.first_class : part.first_class + part.num_classes]
        return [name.removeprefix(f"{part.name}/") for name in names]

    def check_task(self, task: Task) -> None:
        """Refuses a task whose images or classes differ from the ones this program was
        trained on: it would run, and answer with the wrong classes."""
        if task.image_shape != self.task_image_shape or list(task.class_names) != self.class_names:
            raise ProgramMismatchError(
                f"task {task.name!r} ({task.image_shape}, {task.num_classes} classes) does not "
                f"match the program's task {self.task_name!r} ({self.task_image_shape}, "
                f"{len(self.class_names)} classes)"
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the folder; each file is replaced atomically, so an interrupted save never
        leaves half a file."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        concealed = self.host_image is not None
        document = {
            "format": FORMAT,
            "format_version": 3 if self.learned_map is not None else 2 if concealed else 1,
            "arnn_tf_version": self.arnn_tf_version,
            "backbone": dataclasses.asdict(self.backbone),
            "program_layer": "ConcealedProgram" if concealed else "AdversarialProgram",
            "program": self.program_config,
            "label_map": {"spec": self.label_map_spec, "groups": self.label_groups},
            "inference": {"flip_average": self.flip_average},
            "task": {
                "name": self.task_name,
                "image_shape": list(self.task_image_shape),
                "class_names": self.class_names,
                "parts": [dataclasses.asdict(p) for p in self.parts],
            },
            "metrics": self.metrics,
        }
        if self.recipe is not None:
            document["recipe"] = self.recipe
        _atomic_write(
            path / "W.npy", lambda f: np.save(f, self.weight.astype("float32"), allow_pickle=False)
        )
        if concealed:
            _atomic_write(
                path / HOST_IMAGE_FILE,
                lambda f: np.save(f, self.host_image.astype("float32"), allow_pickle=False),
            )
        else:
            (path / HOST_IMAGE_FILE).unlink(
                missing_ok=True
            )  # left by a concealed program saved here before
        if self.learned_map is not None:
            kernel, bias = self.learned_map
            _atomic_write(
                path / LEARNED_MAP_FILE,
                lambda f: np.savez(f, kernel=kernel.astype("float32"), bias=bias.astype("float32")),
            )
        else:
            (path / LEARNED_MAP_FILE).unlink(missing_ok=True)
        _atomic_write(
            path / "program.json", lambda f: f.write(json.dumps(document, indent=2).encode())
        )
        return path

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
        layer = document.get("program_layer", "AdversarialProgram")
        if layer not in ("AdversarialProgram", "ConcealedProgram"):
            raise ValueError(f"{path / 'program.json'}: unknown program layer {layer!r}")
        host_image = None
        if layer == "ConcealedProgram":
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
        task = document["task"]
        flip_average = document.get("inference", {}).get("flip_average", False)
        if not isinstance(flip_average, bool):
            raise ValueError(
                f"{path / 'program.json'}: inference.flip_average must be true or false, "
                f"not {flip_average!r}"
            )
        return cls(
            weight,
            document["program"],
            document["label_map"]["groups"],
            BackboneRef(**document["backbone"]),
            task["name"],
            task["class_names"],
            document["label_map"]["spec"],
            document.get("metrics", {}),
            document.get("arnn_tf_version", "unknown"),
            tuple(TaskPart(**part) for part in task.get("parts", [])),
            host_image,
            flip_average,
            _load_learned_map(path) if document.get("format_version") == 3 else None,
            document.get("recipe"),
        )

    def build_model(self, backbone: keras.Model | None = None) -> ReprogrammedModel:
        """Rebuilds the model with this program, on ``backbone`` or a freshly built one.

        Raises ProgramMismatchError when the backbone is not the one the program was trained on.
        """
        if backbone is None:
            backbone = self.build_backbone()
        self._check_backbone(backbone)
        if self.host_image is None:
            program = AdversarialProgram(**self.program_config)
        else:
            program = ConcealedProgram(**self.program_config, host_image=self.host_image)
        model = ReprogrammedModel(
            program, backbone, self._label_map(backbone), flip_average=self.flip_average
        )
        program.weight.assign(self.weight)
        return model

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
        if self.host_image is not None and not np.array_equal(
            self.host_image, keras.ops.convert_to_numpy(model.program.host_image.value)
        ):
            raise ProgramMismatchError("the program to start from is hidden in another host photo")
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
        model.program.weight.assign(self.weight)

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


def _comparable_config(program: AdversarialProgram) -> dict[str, Any]:
    """The program layer's settings as saved (without Keras' own name, trainable, dtype)."""
    config = program.get_config()
    for key in ("name", "trainable", "dtype"):
        config.pop(key, None)
    return json.loads(json.dumps(config))  # as program.json reads back: tuples become lists


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


def _atomic_write(path: Path, write: Any) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        write(f)
    os.replace(f.name, path)
