"""Progress on long work: a bar in a terminal, plain lines in a log file.

Keras' own progress bar redraws itself with ANSI escape codes on every POSIX system, even
when its output goes to a file, so a redirected 20,000-step log grows by about a kilobyte of
escape codes per step. Here the bar is only drawn on a terminal; elsewhere a plain line is
printed every few steps. Steps count from where a resumed run started, not from 1.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import keras
import numpy as np

COUNTS = frozenset({"queries"})
"""Logs that count something, shown as integers: Keras hands every log value to callbacks as
a float (a black-box run's "queries": frames sent)."""


def interactive() -> bool:
    """Whether standard output is a terminal that can redraw a bar."""
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()


def keras_verbosity(verbose: Any) -> int:
    """The ``verbose`` for Keras' `evaluate`/`predict`: the bar in a terminal, else one line."""
    if not verbose:
        return 0
    return 1 if interactive() else 2


def progress_bar(target: int, unit_name: str = "step") -> keras.utils.Progbar:
    """Keras' bar in a terminal; elsewhere its single summary line at the end."""
    return keras.utils.Progbar(target, verbose=keras_verbosity(True), unit_name=unit_name)


def default_interval(total_steps: int) -> int:
    """Lines in a log: about ten over a short run, one every 100 steps in a long one."""
    return max(1, min(100, total_steps // 10))


class _Bar(keras.utils.Progbar):
    """Keras' bar, showing integer values whole: Progbar formats the values it averages (kept
    as ``[sum, count]``) with 4 decimals and prints any other value it holds as it is."""

    def update(self, current: int, values: Any = None, finalize: bool | None = None) -> None:
        values = list(values or [])
        if self.verbose != 1 or not hasattr(self, "_values_order"):  # its own formatting
            return super().update(current, values, finalize)
        for key, value in values:
            if key not in self._values_order:
                self._values_order.append(key)
            if isinstance(value, int):
                self._values[key] = value
        numbers = [(key, value) for key, value in values if not isinstance(value, int)]
        super().update(current, numbers, finalize)


class StepProgress(keras.callbacks.Callback):
    """Shows training progress over the whole run, from ``first_step`` to ``total_steps``.

    In a terminal it redraws one bar; otherwise it prints ``step N/TOTAL - loss ... - T s``
    every ``every`` steps and at the last one. The metrics are the running values `fit`
    reports (averages over the current epoch), with 4 decimals; counts (`COUNTS`, integers)
    are shown whole.
    """

    def __init__(
        self,
        total_steps: int,
        first_step: int = 0,
        every: int | None = None,
        terminal: bool | None = None,
    ) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.step = first_step
        self.every = every or default_interval(total_steps)
        self.terminal = interactive() if terminal is None else terminal
        self._bar: keras.utils.Progbar | None = None
        self._start = time.perf_counter()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.step += 1
        values = [(key, _number(key, value)) for key, value in (logs or {}).items()]
        if self.terminal:
            if self._bar is None:
                self._bar = _Bar(self.total_steps, stateful_metrics=[key for key, _ in values])
            self._bar.update(self.step, values)
        elif self.step % self.every == 0 or self.step >= self.total_steps:
            metrics = "".join(f" - {key} {_text(value)}" for key, value in values)
            seconds = time.perf_counter() - self._start
            print(f"step {self.step}/{self.total_steps}{metrics} - {seconds:.0f} s", flush=True)


def _number(key: str, value: Any) -> int | float:
    """A log value as a Python number: an int for a count, else a float."""
    if key in COUNTS or (
        isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    ):
        return int(value)
    return float(value)


def _text(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"
