"""`arnn bench`: training-step throughput and peak memory of a reprogrammed model.

Times real `model.fit` steps (the same path `arnn train` uses) on random task images held
in memory, after warm-up steps that absorb tracing, so the number measures the step itself.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.image.model import build_reprogrammed_model
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.training.distribute import set_precision


class _StepClock(keras.callbacks.Callback):
    """Records when the warm-up ends and when the last step ends."""

    def __init__(self, warmup: int) -> None:
        super().__init__()
        self.warmup = warmup
        self.started = self.ended = 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch + 1 == self.warmup:
            self.started = time.perf_counter()
        self.ended = time.perf_counter()


def peak_memory_mb() -> float:
    """Peak GPU memory when a GPU is used, else the process's peak resident memory."""
    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def benchmark_model_and_data(
    backbone: str = "efficientnet_lite0",
    batch_size: int = 32,
    image_size: int = 32,
    weights: str | None = "imagenet",
    jit_compile: bool | str = "auto",
) -> tuple[ReprogrammedModel, tf.data.Dataset]:
    """A compiled 10-class reprogrammed model and an endless batch of random RGB images."""
    model = build_reprogrammed_model(
        build_backbone(backbone, weights), (image_size, image_size, 3), 10, l2=1e-6
    )
    model.compile(jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, image_size, image_size, 3)).astype("uint8")
    labels = rng.integers(0, 10, batch_size).astype("int32")
    return model, tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(tf.data.AUTOTUNE)


def benchmark_training(
    backbone: str = "efficientnet_lite0",
    batch_size: int = 32,
    steps: int = 20,
    image_size: int = 32,
    precision: str = "float32",
    warmup: int = 3,
    weights: str | None = "imagenet",
    jit_compile: bool | str = "auto",
) -> dict[str, Any]:
    """Trains ``warmup + steps`` batches of random RGB task images; returns the rates."""
    if steps < 1 or warmup < 1:
        raise ValueError("need at least one warm-up step and one timed step")
    set_precision(precision)
    model, data = benchmark_model_and_data(backbone, batch_size, image_size, weights, jit_compile)
    clock = _StepClock(warmup)
    model.fit(
        data, epochs=1, steps_per_epoch=warmup + steps, shuffle=False, callbacks=[clock], verbose=0
    )
    seconds = clock.ended - clock.started
    return {
        "backbone": backbone,
        "batch_size": batch_size,
        "image_size": image_size,
        "precision": precision,
        "steps": steps,
        "seconds": round(seconds, 3),
        "images_per_second": round(steps * batch_size / seconds, 2),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "device": "GPU" if tf.config.list_logical_devices("GPU") else "CPU",
        "jit_compile": model.jit_compile,
    }
