"""Trains a test model with `WhiteBoxTrainer`, recipe fields given as keywords."""

from typing import Any

from arnn_tf.recipes import Recipe
from arnn_tf.training.results import TrainingResult
from arnn_tf.training.white_box import WhiteBoxTrainer

RUN_OPTIONS = (
    "callbacks",
    "checkpoint_dir",
    "checkpoint_every",
    "save_checkpoints",
    "max_minutes",
    "shuffle",
    "map_trained",
)
"""`Trainer.fit`'s keywords that are not recipe fields."""


def fit(model: Any, task: Any, *, verbose: bool = False, **settings: Any) -> TrainingResult:
    """Trains ``model`` on ``task`` for the `Recipe` the other ``settings`` change."""
    options = {name: settings.pop(name) for name in RUN_OPTIONS if name in settings}
    recipe = Recipe().replace(**settings)
    return WhiteBoxTrainer().fit(model, task, recipe, verbose=verbose, **options)
