"""The saved-program format: what each file of a program folder holds, written and read.

A trained program is a few hundred kilobytes (``W`` plus settings), while the backbone is
many megabytes that every user can rebuild. A saved program is a folder with

- ``program.json``: format version, arnn-tf version, the backbone's name, weights source,
  seed and a sha256 fingerprint of its weights, the program layer's settings, the label
  map, the task's name, modality (what it reads: "image", "text", "mixed") and class
  names (and, for an older program of data sets joined as one image task, each one's name,
  first class and number of classes), how it answers at inference (``flip_average``:
  averaged with each image's mirror image), the recipe it was trained with and the run's
  metrics;
- ``W.npy``: the program weight, read back with ``allow_pickle=False``;
- ``label_map.npz``, for a learned label map (`arnn_tf.layers.label_mapping.LinearLabelMap`)
  only: its ``kernel`` and ``bias``, read back the same way;
- the input encoder (format 4: an image task's placement, its concealment in a host photo,
  or text's token patches) as Keras serialises it in ``program.json``, its weights, if it has
  any, in ``encoder.npz`` (the host photo, the patch table), and the task's input
  preprocessing in ``input.json`` (a `TextVectorization`'s settings and vocabulary);
- format 5, a program of several parts: each part's encoder, map and input under
  ``parts/<i>/`` (`arnn_tf.programs.parts`).

Formats 1 to 3 are read by `arnn_tf.programs.older`. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from arnn_tf.modalities.encoders import encoder_class

FORMAT = "arnn-tf-program"
FORMAT_VERSION = 5
"""The newest format this arnn-tf reads. A program is written in the oldest format that holds
it: 4 for a program behind its input encoder, 5 for a program shared by parts with encoders of
their own (`arnn_tf.programs.parts`). Formats 1 to 3 are read, not written."""

HOST_IMAGE_FILE = "host_image.npy"
LEARNED_MAP_FILE = "label_map.npz"
ENCODER_FILE = "encoder.npz"
INPUT_FILE = "input.json"


def read_document(path: Path) -> dict[str, Any]:
    """``program.json`` of the folder ``path``, checked to be a format this arnn-tf reads."""
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
    return document


def read_weight(path: Path, document: dict[str, Any]) -> np.ndarray:
    """``W.npy``, checked to be the program's n x n x 3."""
    weight = np.load(path / "W.npy", allow_pickle=False)
    expected = (document["program"]["frame_size"],) * 2 + (3,)
    if weight.shape != expected:
        raise ValueError(f"{path / 'W.npy'} has shape {weight.shape}, expected {expected}")
    return weight


def read_flip_average(path: Path, document: dict[str, Any]) -> bool:
    """Whether the program answers averaged with the mirror image (false when not said)."""
    flip_average = document.get("inference", {}).get("flip_average", False)
    if not isinstance(flip_average, bool):
        raise ValueError(
            f"{path / 'program.json'}: inference.flip_average must be true or false, "
            f"not {flip_average!r}"
        )
    return flip_average


def write_arrays(
    path: Path,
    weight: np.ndarray,
    learned_map: tuple[np.ndarray, np.ndarray] | None,
    encoder_weights: list[np.ndarray] | None,
    input_state: dict[str, Any] | None,
) -> None:
    """Writes ``W.npy`` and the files a program of one part has or lacks (a learned map's,
    an encoder's weights, the input state), each atomically; files a program of another kind
    left in the folder are removed."""
    atomic_write(path / "W.npy", lambda f: np.save(f, weight.astype("float32"), allow_pickle=False))
    (path / HOST_IMAGE_FILE).unlink(missing_ok=True)  # a format-2 program's, now the encoder's
    arrays = None
    if learned_map is not None:
        kernel, bias = learned_map
        arrays = {"kernel": kernel.astype("float32"), "bias": bias.astype("float32")}
    _write_or_remove(path / LEARNED_MAP_FILE, arrays, lambda f, a: np.savez(f, **a))
    arrays = None
    if encoder_weights:  # a plain image placement has none: no file
        arrays = {str(i): np.asarray(w) for i, w in enumerate(encoder_weights)}
    _write_or_remove(path / ENCODER_FILE, arrays, lambda f, a: np.savez(f, **a))
    _write_or_remove(path / INPUT_FILE, input_state, lambda f, a: f.write(json.dumps(a).encode()))


def write_document(path: Path, document: dict[str, Any]) -> None:
    """Writes ``program.json`` atomically (last, so a folder with it is a whole program)."""
    atomic_write(path / "program.json", lambda f: f.write(json.dumps(document, indent=2).encode()))


def program_and_encoder(
    path: Path, document: dict[str, Any]
) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
    """The frame program's settings and (encoder config, its weights, the input state) of a
    program of format 4 or 5; None for an older program (`arnn_tf.programs.older`)."""
    if document.get("program_layer", "AdversarialProgram") != "FrameProgram":
        return None
    # saved before the frame program could skip its clip: it clipped
    return {"clip": True, **document["program"]}, _load_encoder(path, document)


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
        if (path / ENCODER_FILE).is_file() or _encoder_has_weights(document["encoder"]):
            with np.load(path / ENCODER_FILE, allow_pickle=False) as arrays:
                weights = [arrays[str(i)] for i in range(len(arrays.files))]
        state_file = path / INPUT_FILE
        state = json.loads(state_file.read_text()) if state_file.is_file() else None
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} holds a program behind an input encoder but no {Path(error.filename).name}"
        ) from None
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{path}: the input encoder's files are unreadable: {error}") from None
    return document["encoder"], weights, state


def _encoder_has_weights(encoder: dict[str, Any]) -> bool:
    """Whether the serialised input encoder has weights to read (an image placement has none)."""
    return bool(keras.saving.deserialize_keras_object(encoder).weights)


def read_learned_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def comparable_config(program: keras.layers.Layer) -> dict[str, Any]:
    """The program layer's settings as saved (without Keras' own name, trainable, dtype)."""
    return json.loads(json.dumps(layer_settings(program.get_config())))  # tuples become lists


def layer_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A layer config without Keras' own name, trainable and dtype: what a warm start compares
    (a run with W frozen saves its layers untrainable, and the next run may train them)."""
    return {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")}


def _write_or_remove(path: Path, value: Any, write: Any) -> None:
    """Writes ``value`` to ``path`` with ``write(file, value)``, atomically; with None removes
    ``path``, which a program of another kind saved to the same folder may have left."""
    if value is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, lambda f: write(f, value))


def atomic_write(path: Path, write: Any) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        write(f)
    os.replace(f.name, path)
