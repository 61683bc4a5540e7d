"""The callback loop of a hand-written training loop, shared by every trainer that is not
`model.fit` (the `strategy.run` loop and the query-only trainer).

It calls the callbacks as `model.fit` does (train, epoch and batch hooks, ``stop_training``,
the optimiser's EMA applied at the end), so checkpoints, resume, the step and time budget,
progress and TensorBoard work the same under any trainer. Backend-agnostic: a step is any
callable.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import keras

StepLogs = dict[str, float]


def run_callback_loop(
    model: keras.Model,
    steps: int,
    steps_per_epoch: int,
    callbacks: Sequence[keras.callbacks.Callback],
    train_step: Callable[[], StepLogs],
    running: Sequence[keras.metrics.Metric] = (),
) -> dict[str, list[float]]:
    """Runs ``train_step`` ``steps`` times in epochs of ``steps_per_epoch``, calling
    ``callbacks`` around each; returns a `fit`-style history (each log's value at the end of
    every epoch).

    ``train_step`` trains one batch and returns the logs after it (running means over the
    epoch, as `model.fit` reports them); it may set ``model.stop_training``. The metrics
    ``running`` (those means) are reset as each epoch begins. When a step raises, the
    callbacks still see the end of training (a checkpoint keeps the steps before it) and the
    error goes on.
    """
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    history: dict[str, list[float]] = {}
    logs: StepLogs = {}
    done = 0
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(math.ceil(steps / steps_per_epoch)):
        if model.stop_training:
            break
        callback_list.on_epoch_begin(epoch)
        for metric in running:
            metric.reset_state()
        for batch in range(min(steps_per_epoch, steps - done)):
            callback_list.on_train_batch_begin(batch)
            try:
                logs = train_step()
            except Exception:
                callback_list.on_train_end(logs)
                raise
            done += 1
            callback_list.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        callback_list.on_epoch_end(epoch, logs)
    model.optimizer.finalize_variable_values(model.trainable_variables)  # EMA, as `fit` does
    callback_list.on_train_end(logs)
    return history
