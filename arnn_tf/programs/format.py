"""The saved-program format: what each file of a program folder holds, written and read.

A trained program is a few hundred kilobytes (``W`` plus settings), while the backbone is
many megabytes that every user can rebuild. A saved program (format 6) is a folder with

- ``program.json``: format version, arnn-tf version, the backbone's name, weights source,
  seed and a sha256 fingerprint of its weights, the frame program's settings, the label-map
  spec, the task's name and modality (what it reads: "image", "text", or "mixed" for parts
  of several kinds), how it answers at inference (``flip_average``: averaged with each
  image's mirror image), the recipe it was trained with, the run's metrics, and its parts:
  for each, its name, class names, input encoder (as Keras serialises it) and label map;
- ``W.npy``: the program weight (n x n x 3, or the d numbers of a program written as a code),
  read back with ``allow_pickle=False``;
- ``parts/<i>/``: part i's arrays (`arnn_tf.programs.parts`): its encoder's weights, a
  learned map's kernel and bias, and its input state (a text part's vectorizer).

A program of one task is a program of one part. An older program of image data sets joined
as one part also lists each one's name, first class and number of classes (``joined``).
Formats 1 to 5 are read by `arnn_tf.programs.older`. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

FORMAT = "arnn-tf-program"
FORMAT_VERSION = 6
"""The format this arnn-tf writes, and the newest it reads."""

OLDER_FILES = ("host_image.npy", "label_map.npz", "encoder.npz", "input.json")
"""Files of formats 2 to 4 beside ``W.npy``, now each part's (removed when saved again)."""


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
    """``W.npy``, checked to be the program's n x n x 3 (or its code's d numbers)."""
    weight = np.load(path / "W.npy", allow_pickle=False)
    settings = document["program"]
    code = settings.get("code_dimension")
    expected = (settings["frame_size"],) * 2 + (3,) if code is None else (code,)
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


def write_weight(path: Path, weight: np.ndarray) -> None:
    """Writes ``W.npy`` atomically and removes the files an older format kept beside it."""
    atomic_write(path / "W.npy", lambda f: np.save(f, weight.astype("float32"), allow_pickle=False))
    for name in OLDER_FILES:
        (path / name).unlink(missing_ok=True)


def write_document(path: Path, document: dict[str, Any]) -> None:
    """Writes ``program.json`` atomically (last, so a folder with it is a whole program)."""
    atomic_write(path / "program.json", lambda f: f.write(json.dumps(document, indent=2).encode()))


def comparable_config(program: keras.layers.Layer) -> dict[str, Any]:
    """The program layer's settings as saved (without Keras' own name, trainable, dtype)."""
    return json.loads(json.dumps(layer_settings(program.get_config())))  # tuples become lists


def layer_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A layer config without Keras' own name, trainable and dtype: what a warm start compares
    (a run with W frozen saves its layers untrainable, and the next run may train them)."""
    return {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")}


def atomic_write(path: Path, write: Any) -> None:
    """Writes ``path`` with ``write(file)`` into a temporary file, then moves it into place,
    so an interrupted save never leaves half a file."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        write(f)
    os.replace(f.name, path)
