"""Hyper-parameter search for reprogramming with Keras Tuner (`arnn tune`).

Reprogramming accuracy depends strongly on the learning rate, lambda, the label map, the
schedule and how the task image is placed, all of them `arnn_tf.recipes.Recipe` fields. A
search varies the fields a space file names around a base recipe, so every trial is a
recipe, and the best one is saved as a recipe that ``arnn train --recipe`` trains again.
One module per concern:

- `space`: the search space, read from a JSON file users edit (``tuning/default_space.json``);
- `holdout`: the held-out slice of the train split that scores trials, so the test split
  stays untouched until the best program is evaluated on it;
- `hypermodel`: each trial's recipe, and its model (a fresh program and label map around one
  frozen backbone) and training;
- `tuner`: a `keras_tuner.Tuner` whose trial checkpoints are saved programs, and the oracles;
- `dashboard`: TensorBoard's HParams experiment and each trial's values;
- `report`: the leaderboard and the best trial's outputs;
- `search`: `tune`, the whole search as one library call (the ``arnn tune`` command,
  `arnn_tf.cli.commands.tune`, makes it).
"""

from arnn_tf.tuning.holdout import holdout_split
from arnn_tf.tuning.hypermodel import ReprogrammingHyperModel
from arnn_tf.tuning.search import tune
from arnn_tf.tuning.space import Parameter, SearchSpace
from arnn_tf.tuning.tuner import ProgramTuner, make_oracle

__all__ = [
    "Parameter",
    "ProgramTuner",
    "ReprogrammingHyperModel",
    "SearchSpace",
    "holdout_split",
    "make_oracle",
    "tune",
]
