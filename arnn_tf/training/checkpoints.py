"""Program-only training checkpoints, so an interrupted `arnn train` resumes where it stopped.

Only the trainable state changes during reprogramming: ``W`` and the optimiser's slots and
step counter. A checkpoint is those arrays in one ``.npz`` file (a few megabytes even for a
299 x 299 program), replaced atomically, so a process killed at any instant (SIGKILL
included) leaves either the previous checkpoint or the new one, never half of one.
Written with `keras.ops`/numpy only, so it works on any Keras backend.

A checkpoint also keeps the training time spent up to it, over every process that trained
the run, so a run resumed after an interruption still knows its whole training time, and any
arrays of the trainer's own (a search's state, `checkpoint_extras`).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

CHECKPOINT_FILE = "program_checkpoint.npz"
SECONDS = "seconds"
"""The checkpoint's entry for the training seconds spent up to it (absent in older ones)."""
EXTRA = "extra/"
"""The prefix of the entries that hold the trainer's own arrays."""


def _training_state(model: keras.Model) -> list[Any]:
    """The variables a checkpoint holds: the trainable ones (W, a learned label map), the
    optimiser's (iterations first), a fixed label map's (iterative label mapping changes it)."""
    return [
        *model.trainable_variables,
        *model.optimizer.variables,
        *(w for label_map in model.label_maps for w in label_map.non_trainable_weights),
    ]


def save_checkpoint(
    model: keras.Model,
    directory: str | os.PathLike[str],
    seconds: float | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Writes the program and optimiser state, the run's training ``seconds`` so far if
    given, and the trainer's ``extra`` arrays by name; returns the checkpoint's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        f"v{i}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(_training_state(model))
    }
    if seconds is not None:
        arrays[SECONDS] = np.float64(seconds)
    arrays.update({EXTRA + name: np.asarray(value) for name, value in (extra or {}).items()})
    path = directory / CHECKPOINT_FILE
    with tempfile.NamedTemporaryFile(
        dir=directory, prefix=".checkpoint.", suffix=".npz", delete=False
    ) as f:
        np.savez(f, **arrays)
    os.replace(f.name, path)
    return path


def restore_checkpoint(model: keras.Model, directory: str | os.PathLike[str]) -> int | None:
    """Loads a checkpoint into a compiled model; returns the step it was taken at, or None.

    Raises ValueError when the checkpoint belongs to a differently shaped program.
    """
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    variables = _training_state(model)
    with np.load(path, allow_pickle=False) as data:
        stored = [n for n in data.files if n != SECONDS and not n.startswith(EXTRA)]
        if len(stored) != len(variables):
            raise ValueError(
                f"{path} holds {len(stored)} arrays, this model's training state has "
                f"{len(variables)}: it was written for another program or optimiser"
            )
        for i, variable in enumerate(variables):
            value = data[f"v{i}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{path}: array {i} has shape {value.shape}, expected {tuple(variable.shape)} "
                    "(a checkpoint of another program; delete it or use another output folder)"
                )
            variable.assign(value)
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def checkpoint_extras(directory: str | os.PathLike[str]) -> tuple[float, dict[str, np.ndarray]]:
    """What the checkpoint in ``directory`` keeps besides the training state, read at once:
    the training seconds it was written after (0 without a checkpoint, or for one from before
    checkpoints kept them) and the trainer's own arrays, by name."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return 0.0, {}
    with np.load(path, allow_pickle=False) as data:
        seconds = float(data[SECONDS]) if SECONDS in data.files else 0.0
        return seconds, {n[len(EXTRA):]: data[n] for n in data.files if n.startswith(EXTRA)}


class ProgramCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every ``every_steps`` batches and when training ends.

    Once the loss stops being finite nothing more is written, so the last checkpoint on
    disk is always from before a run diverged. Each checkpoint keeps the training seconds
    so far: ``seconds_before`` (earlier processes') plus this one's since training began, and
    the arrays ``extra`` returns then (the trainer's own).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        every_steps: int = 100,
        seconds_before: float = 0,
        extra: Callable[[], dict[str, np.ndarray]] = dict,
    ) -> None:
        super().__init__()
        if every_steps < 1:
            raise ValueError(f"every_steps must be positive, got {every_steps}")
        self.directory = Path(directory)
        self.every_steps = every_steps
        self.seconds_before = float(seconds_before)
        self.extra = extra
        self._since_save = 0
        self._diverged = False
        self._start = time.perf_counter()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def _save(self) -> None:
        seconds = self.seconds_before + time.perf_counter() - self._start
        save_checkpoint(self.model, self.directory, seconds, self.extra())

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self._diverged = True
        self._since_save += 1
        if self._since_save >= self.every_steps and not self._diverged:
            self._since_save = 0
            self._save()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._diverged:
            self._save()
