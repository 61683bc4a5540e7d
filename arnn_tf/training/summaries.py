"""TensorBoard logging for reprogramming runs (TensorFlow-specific: `tf.summary`).

Besides loss and accuracy, what a user wants to watch is the program itself: its norm, the
learning rate, the program ``P`` as an image and a few of the adversarial inputs
``X_adv`` the frozen network actually sees. Hyper-parameters go to the HParams plugin so
runs under one ``--logdir`` parent compare in TensorBoard's HParams tab.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

#: Metrics shown as columns of the HParams tab.
HPARAM_METRICS = ("epoch_accuracy", "epoch_loss", "test_accuracy")


class ProgramSummaries(keras.callbacks.Callback):
    """Writes scalars every ``every_steps`` batches, images every epoch, and hparams once.

    Steps are the optimiser's iteration count, so a resumed run continues its curves.
    ``sample_images`` (a few task inputs: images, or a text task's token ids) are shown as the
    ``X_adv`` frames the backbone sees for them, each epoch.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        sample_images: np.ndarray,
        hparams: Mapping[str, Any] | None = None,
        every_steps: int = 10,
    ) -> None:
        super().__init__()
        self.logdir = str(logdir)
        self.sample_images = sample_images
        self.hparams = {key: value for key, value in (hparams or {}).items() if value is not None}
        self.every_steps = every_steps
        self._writer: Any = None
        self._first_step = 0

    @property
    def writer(self) -> Any:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.logdir)
        return self._writer

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._first_step = self._step()
        if not self.hparams:
            return
        with self.writer.as_default():
            hparams_api.hparams_config(
                hparams=[hparams_api.HParam(key) for key in self.hparams],
                metrics=[hparams_api.Metric(tag) for tag in HPARAM_METRICS],
            )
            hparams_api.hparams(self.hparams)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._step()
        if step % self.every_steps:
            return
        optimizer = self.model.optimizer
        with self.writer.as_default(step=step):
            for key, value in (logs or {}).items():
                tf.summary.scalar(f"batch_{key}", float(value))
            learning_rate = optimizer.learning_rate
            tf.summary.scalar("learning_rate", float(keras.ops.convert_to_numpy(learning_rate)))
            tf.summary.scalar(
                "program_norm",
                float(np.linalg.norm(keras.ops.convert_to_numpy(self.model.program.weight.value))),
            )
        if logs and "queries" in logs and step > self._first_step:
            self._write_queries(step, logs)

    def _write_queries(self, step: int, logs: dict[str, Any]) -> None:
        """A query-only run's accuracy against the queries it has cost, resumed steps included.

        Every step queries the same number of frames, so the run's total is the step times what
        this process's steps cost each, though a resumed process counts from 0.
        """
        total = round(step * float(logs["queries"]) / (step - self._first_step))
        with self.writer.as_default(step=step):
            tf.summary.scalar("queries_total", total)
        with self.writer.as_default(step=total):
            tf.summary.scalar("accuracy_by_queries", float(logs["accuracy"]))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        program = self.model.program
        with self.writer.as_default(step=self._step()):
            for key, value in (logs or {}).items():
                tf.summary.scalar(f"epoch_{key}", float(value))
            p = keras.ops.convert_to_numpy(program.program()).astype("float32")
            tf.summary.image("program", (p[None] + 1.0) / 2.0)
            x_adv = self.model.adversarial_inputs(self.sample_images)
            x_adv = keras.ops.convert_to_numpy(x_adv).astype("float32")
            tf.summary.image("x_adv", (x_adv + 1.0) / 2.0, max_outputs=len(x_adv))
        self.writer.flush()

    def write_test_metrics(self, results: Mapping[str, float], step: int) -> None:
        """Records the final test-split metrics (``test_accuracy``, ``test_loss``) at ``step``.

        The step is given, not read off the model: a rerun of a finished run trains no step,
        so `fit` never attaches the model to this callback.
        """
        with self.writer.as_default(step=step):
            for key, value in results.items():
                tf.summary.scalar(f"test_{key}", float(value))
        self.writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.writer.flush()
