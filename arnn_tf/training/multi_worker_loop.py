"""A `strategy.run` training loop for `MultiWorkerMirroredStrategy` (TensorFlow-specific).

Keras 3.15's `model.fit` fails under `MultiWorkerMirroredStrategy`: before training it
reduces a sample batch with ``strategy.reduce("MEAN", (images, labels))``, which the
collective strategy cannot do for a nested structure ("Attempt to convert a value
(PerReplica...) to a Tensor"). This loop does what `fit` does for a reprogrammed model
(the same loss, regulariser, optimiser and callbacks), so `WhiteBoxTrainer` uses it
for multi-worker runs and `model.fit` everywhere else.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from arnn_tf.training.callback_loop import run_callback_loop
from arnn_tf.training.losses import per_example_loss


def needs_custom_loop(strategy: tf.distribute.Strategy) -> bool:
    """Whether `model.fit` cannot run under ``strategy``."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def fit_with_strategy_run(
    model: keras.Model,
    data: tf.data.Dataset,
    *,
    steps: int,
    global_batch_size: int,
    steps_per_epoch: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, list[float]]:
    """Trains ``model`` (compiled, built inside the current strategy's scope) for ``steps`` batches.

    Returns a `fit`-style history: per-epoch mean loss and accuracy.
    """
    strategy = tf.distribute.get_strategy()
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    loss_sum = keras.metrics.Mean(name="loss")
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    train_step = _distributed_step(model, global_batch_size, loss_sum, accuracy)
    options = tf.data.Options()
    # in-memory data has no files to shard: each worker takes its part of every batch
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(data.with_options(options)))

    def one_step() -> dict[str, float]:
        train_step(iterator)
        return {"loss": float(loss_sum.result()), "accuracy": float(accuracy.result())}

    return run_callback_loop(
        model, steps, steps_per_epoch, callbacks, one_step, running=(loss_sum, accuracy)
    )


def _distributed_step(
    model: keras.Model,
    global_batch_size: int,
    loss_sum: keras.metrics.Mean,
    accuracy: keras.metrics.Metric,
) -> Callable[[Any], None]:
    """One training step on every replica: `fit`'s loss (mean over the global batch plus the
    regulariser), Adam's update, and the running loss and accuracy."""
    strategy = tf.distribute.get_strategy()

    def replica_step(images: tf.Tensor, labels: tf.Tensor) -> None:
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            per_example = per_example_loss(model, labels, probabilities)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        loss_sum.update_state(loss * strategy.num_replicas_in_sync)
        accuracy.update_state(labels, probabilities)

    @tf.function
    def train_step(iterator: Any) -> None:
        strategy.run(replica_step, args=next(iterator))

    return train_step
