"""The parts of a saved shared-program (mixed) program: each part's encoder, map and input.

A program trained on a `arnn_tf.tasks.parts.MultiPartTask` shares ``W`` between parts that keep
their own input encoder (its config as Keras serialises it, and its weights), label map (fixed
groups, or a learned kernel and bias) and input state (a text part's vectorizer). They are
written under ``parts/<i>/`` of the program folder, arrays with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from arnn_tf.layers.label_mapping import LabelMapping, LinearLabelMap
from arnn_tf.modalities.encoders import encoder_class

PARTS_FOLDER = "parts"


@dataclasses.dataclass
class SavedPart:
    """One part of a shared-program model, as saved."""

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

    def build_label_map(self, num_source: int, name: str) -> LabelMapping | LinearLabelMap:
        """The part's label map layer, called ``name``, with its saved groups or parameters."""
        if self.learned_map is None:
            return LabelMapping(self.label_groups, num_source, name=name)
        label_map = LinearLabelMap(len(self.class_names), num_source, name=name)
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
    """The parts of a trained many-part `arnn_tf.models.reprogrammed.ReprogrammedModel`, named
    ``names``, with their class names and input states (``task.input_state`` of each member)."""
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


def write_parts(path: Path, parts: Sequence[SavedPart], write: Callable[..., None]) -> None:
    """Writes each part's arrays and input state under ``path/parts/<i>/`` with ``write(file,
    save)``, the program folder's atomic writer."""
    for i, part in enumerate(parts):
        folder = path / PARTS_FOLDER / str(i)
        folder.mkdir(parents=True, exist_ok=True)
        weights = {str(j): np.asarray(w) for j, w in enumerate(part.encoder_weights)}
        write(folder / "encoder.npz", lambda f, w=weights: np.savez(f, **w))
        if part.learned_map is not None:
            kernel, bias = part.learned_map
            write(
                folder / "label_map.npz", lambda f, k=kernel, b=bias: np.savez(f, kernel=k, bias=b)
            )
        if part.input_state is not None:
            state = json.dumps(part.input_state).encode()
            write(folder / "input.json", lambda f, s=state: f.write(s))


def read_parts(path: Path, descriptions: Sequence[dict[str, Any]]) -> tuple[SavedPart, ...]:
    """The parts ``program.json`` describes, their arrays read from ``path/parts/<i>/``."""
    parts = []
    for i, description in enumerate(descriptions):
        folder = path / PARTS_FOLDER / str(i)
        try:
            encoder_class(description["encoder"])
            with np.load(folder / "encoder.npz", allow_pickle=False) as arrays:
                weights = [arrays[str(j)] for j in range(len(arrays.files))]
            learned = None
            if description["label_map"]["learned"]:
                with np.load(folder / "label_map.npz", allow_pickle=False) as arrays:
                    learned = (arrays["kernel"], arrays["bias"])
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
