"""Learning-rate schedules and the count of steps in an epoch.

Defaults follow the paper and its public re-implementations: Adam, learning rate 0.05
multiplied by 0.96 every 2 epochs, batch 32.
"""

from __future__ import annotations

import math

import keras

from arnn_tf.settings import LR_SCHEDULES

DECAY_RATE = 0.96


DECAY_EVERY_EPOCHS = 2


def paper_learning_rate(
    learning_rate: float, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """``learning_rate`` times 0.96 every 2 epochs, as in the re-implementations of the paper."""
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate,
        decay_steps=DECAY_EVERY_EPOCHS * steps_per_epoch,
        decay_rate=DECAY_RATE,
        staircase=True,
    )


def learning_rate_schedule(
    kind: str, learning_rate: float, steps_per_epoch: int, total_steps: int, warmup_steps: int = 0
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The paper's step decay, or ``"cosine"``: from ``learning_rate`` down to 0 at ``total_steps``.

    The paper's rate hardly decays in a run of a few epochs, so the program is still moving
    at full speed when it is saved; cosine decay lets short runs settle. ``warmup_steps``
    (cosine only) first ramps the rate up linearly from 0: a fresh Adam moves every entry of
    W by about the full rate in its first steps, which undoes much of a warm-started program.
    """
    if warmup_steps and (kind != "cosine" or not 0 < warmup_steps < total_steps):
        raise ValueError(
            f"warmup needs the cosine schedule and fewer warmup steps ({warmup_steps}) "
            f"than training steps ({total_steps})"
        )
    if kind == "paper":
        return paper_learning_rate(learning_rate, steps_per_epoch)
    if kind == "cosine":
        if warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                0.0,
                decay_steps=total_steps - warmup_steps,
                warmup_target=learning_rate,
                warmup_steps=warmup_steps,
            )
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    raise ValueError(
        f"unknown learning-rate schedule {kind!r}; choose from {', '.join(LR_SCHEDULES)}"
    )


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Batches in one pass over ``num_examples`` (the last one may be short)."""
    return max(1, math.ceil(num_examples / batch_size))
