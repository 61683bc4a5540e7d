"""The parts of a saved program: each part's encoder, map, classes and input.

A program shares ``W`` between one or more parts (a task of one input is one part; a
`arnn_tf.tasks.parts.MultiPartTask`, several), each keeping its own input encoder (its config
as Keras serialises it, and its weights), label map (fixed groups, or a learned kernel and
bias) and input state (a text part's vectorizer). Their arrays are written under
``parts/<i>/`` of the program folder with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
from arnn_tf.modalities.encoders import encoder_class
from arnn_tf.programs.format import atomic_write

PARTS_FOLDER = "parts"


@dataclasses.dataclass
class SavedPart:
    """One part of a saved program: its input encoder, label map and classes."""

    name: str
    class_names: list[str]
    encoder: dict[str, Any]
    encoder_weights: list[np.ndarray]
    label_groups: list[list[int]]
    learned_map: tuple[np.ndarray, np.ndarray] | None
    input_state: dict[str, Any] | None

    @property
    def modality(self) -> str:
        """What the part reads ("image", "text"): its encoder's."""
        return encoder_class(self.encoder).modality

    def build_label_map(
        self, num_source: int, name: str | None = None
    ) -> LabelMapping | LinearLabelMap:
        """The part's label map layer (called ``name``, else the layer's default), with its
        saved groups or parameters."""
        names = {} if name is None else {"name": name}
        if self.learned_map is None:
            return LabelMapping(self.label_groups, num_source, **names)
        label_map = LinearLabelMap(len(self.class_names), num_source, **names)
        label_map.set_parameters(*self.learned_map)
        return label_map

    def build_encoder(self) -> keras.layers.Layer:
        """The part's encoder with its saved weights."""
        encoder = keras.saving.deserialize_keras_object(self.encoder)
        encoder.set_weights(self.encoder_weights)
        return encoder

    def description(self) -> dict[str, Any]:
        """What ``program.json`` says of the part (its arrays are files of their own)."""
        return {
            "name": self.name,
            "class_names": self.class_names,
            "encoder": self.encoder,
            "label_map": {"groups": self.label_groups, "learned": self.learned_map is not None},
        }


def saved_parts(
    model: Any, names: Sequence[str], class_names: Sequence[Sequence[str]], inputs: Sequence[Any]
) -> tuple[SavedPart, ...]:
    """The parts of a trained `arnn_tf.models.reprogrammed.ReprogrammedModel`, named ``names``,
    with their class names and input states (``task.input_state`` of each part's task)."""
    parts = []
    for i, (encoder, label_map) in enumerate(zip(model.encoders, model.label_maps)):
        learned = isinstance(label_map, LinearLabelMap)
        parts.append(
            SavedPart(
                names[i],
                list(class_names[i]),
                keras.saving.serialize_keras_object(encoder),
                encoder.get_weights(),
                [] if learned else label_map.groups,
                label_map.parameters() if learned else None,
                inputs[i],
            )
        )
    return tuple(parts)


def write_parts(path: Path, parts: Sequence[SavedPart]) -> None:
    """Writes each part's arrays and input state under ``path/parts/<i>/``, each file
    atomically; a file (or a part's folder) a program saved there before left over goes."""
    for i, part in enumerate(parts):
        folder = path / PARTS_FOLDER / str(i)
        folder.mkdir(parents=True, exist_ok=True)
        weights = {str(j): np.asarray(w) for j, w in enumerate(part.encoder_weights)}
        atomic_write(folder / "encoder.npz", lambda f, w=weights: np.savez(f, **w))
        learned, state = folder / "label_map.npz", folder / "input.json"
        if part.learned_map is not None:
            kernel, bias = (np.asarray(a, "float32") for a in part.learned_map)
            atomic_write(learned, lambda f, k=kernel, b=bias: np.savez(f, kernel=k, bias=b))
        else:
            learned.unlink(missing_ok=True)
        if part.input_state is not None:
            text = json.dumps(part.input_state).encode()
            atomic_write(state, lambda f, t=text: f.write(t))
        else:
            state.unlink(missing_ok=True)
    for folder in (path / PARTS_FOLDER).iterdir():
        if folder.name.isdigit() and int(folder.name) >= len(parts):
            shutil.rmtree(folder)


def read_parts(path: Path, descriptions: Sequence[dict[str, Any]]) -> tuple[SavedPart, ...]:
    """The parts ``program.json`` describes, their arrays read from ``path/parts/<i>/``."""
    parts = []
    for i, description in enumerate(descriptions):
        folder = path / PARTS_FOLDER / str(i)
        try:
            encoder_class(description["encoder"])
        except ValueError as error:
            raise ValueError(f"{path / 'program.json'}: {error}") from None
        try:
            with np.load(folder / "encoder.npz", allow_pickle=False) as arrays:
                weights = [arrays[str(j)] for j in range(len(arrays.files))]
            learned = None
            if description["label_map"]["learned"]:
                learned = read_learned_map(folder / "label_map.npz")
            state_file = folder / "input.json"
            state = json.loads(state_file.read_text()) if state_file.is_file() else None
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(
                f"{folder}: part {i}'s files are missing or unreadable: {error}"
            ) from None
        parts.append(
            SavedPart(
                description["name"],
                description["class_names"],
                description["encoder"],
                weights,
                description["label_map"]["groups"],
                learned,
                state,
            )
        )
    return tuple(parts)


def read_learned_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of a learned label map from ``path`` (an ``.npz``), with clear errors."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            kernel, bias = arrays["kernel"], arrays["bias"]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path.parent} holds a program with a learned label map but no {path.name}"
        ) from None
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{path} is not a learned label map: {error}") from None
    if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
        raise ValueError(f"{path}: kernel {kernel.shape} and bias {bias.shape} do not fit together")
    return kernel, bias


def reader_groups(parts: Sequence[SavedPart]) -> list[tuple[int, ...]]:
    """The parts grouped by the inputs they read, in part order: parts of one group read one
    another's inputs as they are (images of one shape, text of one vectorizer), so an input
    can be answered among all their classes with the task unknown."""
    groups: dict[str, list[int]] = {}
    for i, part in enumerate(parts):
        reads = encoder_class(part.encoder).input_description(part.encoder["config"])
        groups.setdefault(f"{reads} {json.dumps(part.input_state, sort_keys=True)}", []).append(i)
    return [tuple(group) for group in groups.values()]
