"""TensorBoard's HParams dashboard for a search: the experiment, and each trial's values.

The dashboard needs the space's domains and the objective written once at the top of the
log folder, and each trial's values in that trial's run folder; then it lines every trial's
settings up against its score.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from arnn_tf.tuning.space import SearchSpace


def _metric_location(objective: str) -> tuple[str, str]:
    """Where Keras' TensorBoard callback writes a metric: (run subfolder, tag)."""
    if objective.startswith("val_"):
        return "validation", "epoch_" + objective[len("val_") :]
    return "train", "epoch_" + objective


def write_hparams_config(
    log_dir: str | os.PathLike[str], space: SearchSpace, objective: str
) -> None:
    """Writes the HParams dashboard's experiment: the space's domains and the objective
    metric."""
    group, tag = _metric_location(objective)
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hparams_api.hparams_config(
            hparams=[p.hparams_domain() for p in space.parameters],
            metrics=[hparams_api.Metric(tag, group=group, display_name=objective)],
        )


def write_trial_hparams(
    run_dir: str | os.PathLike[str], values: dict[str, Any], trial_id: str
) -> None:
    """Writes one trial's values into its run folder, for the dashboard's table."""
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        hparams_api.hparams(values, trial_id=trial_id)
