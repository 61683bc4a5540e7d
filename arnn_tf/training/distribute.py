"""Choosing a `tf.distribute` strategy and a precision for training (TensorFlow-specific).

Keras 3 `model.fit` runs under these strategies as long as the model is built, compiled
and fitted inside ``strategy.scope()``; the global batch is split across replicas and
Keras scales the loss (regulariser included) by the number of replicas.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from arnn_tf.settings import PRECISIONS, STRATEGIES


def make_strategy(name: str = "auto", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """Builds a strategy by name.

    ``auto``: mirrored over all local GPUs when there are several, else TensorFlow's default
    strategy (one device, which Keras trains without distribution machinery: it then neither
    peeks at a batch of the training data before `fit`, which refills the shuffle buffer, nor
    stops evaluation short of the end of the data); ``one_device``: `OneDeviceStrategy` on the
    first GPU, or the CPU; ``mirrored``: `MirroredStrategy` over
    ``devices`` (default: all local GPUs, or the CPU); ``multi_worker``:
    `MultiWorkerMirroredStrategy`, configured by the ``TF_CONFIG`` environment variable;
    it must be made before anything else runs a TensorFlow operation.
    """
    if name == "multi_worker":  # first: collectives must be configured before TensorFlow starts
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) <= 1:
            return tf.distribute.get_strategy()
        name = "mirrored"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs: the chief, or worker 0 when there is none."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def set_precision(policy: str) -> None:
    """Sets Keras' global dtype policy; call before building the model.

    Under the mixed policies the program ``W`` stays a float32 variable and `LabelMapping`
    returns float32 probabilities, so the loss is float32; with ``mixed_float16`` Keras
    wraps the optimiser in a `LossScaleOptimizer` at compile time.
    """
    if policy not in PRECISIONS:
        raise ValueError(f"unknown precision {policy!r}; choose one of {', '.join(PRECISIONS)}")
    keras.config.set_dtype_policy(policy)
