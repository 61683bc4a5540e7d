"""What a training run reports: its step and time budget, its result, and divergence."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import keras


class StepAndTimeBudget(keras.callbacks.Callback):
    """Stops `fit` after exactly ``max_steps`` batches or once ``max_seconds`` have passed.

    `fit` only counts whole epochs; this lets ``--steps`` end mid-epoch and ``--max-minutes``
    stop a run early while the caller still evaluates and saves.
    """

    def __init__(self, max_steps: int | None = None, max_seconds: float | None = None) -> None:
        super().__init__()
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.steps_done = 0
        self.stopped_by_time = False
        self._start = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps_done += 1
        if self.max_steps is not None and self.steps_done >= self.max_steps:
            self.model.stop_training = True
        elif self.max_seconds is not None and time.perf_counter() - self._start >= self.max_seconds:
            self.stopped_by_time = True
            self.model.stop_training = True


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint (if any) holds the last good program."""


@dataclasses.dataclass
class TrainingResult:
    """What a training run measured. ``steps`` counts all steps, resumed ones included;
    ``seconds``, ``images_per_second`` and ``train_accuracy`` cover this process's run only
    (``train_accuracy`` is None when it resumed a finished run and trained no step);
    ``total_seconds`` the training time of every process that trained the run, as far as its
    checkpoints kept it."""

    steps: int
    resumed_from: int
    seconds: float
    images_per_second: float
    train_accuracy: float | None
    stopped_by_time: bool
    history: dict[str, list[float]]
    total_seconds: float = 0.0
