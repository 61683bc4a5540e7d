"""Black-box reprogramming: training a program with nothing but the model's answers.

`queries` defines what may be asked (`QueryFunction`: frames in, logits out) and answers it
in process (`LocalQuery`); `estimator` turns losses at perturbed program weights into a
gradient estimate (`ZerothOrderEstimator`, BAR's); `trainer` is the `BlackBoxTrainer`, a
`arnn_tf.trainers.Trainer` that learns through one query per step.
"""

from arnn_tf.black_box.estimator import (DEFAULT_BETA, DEFAULT_DIRECTIONS, DEFAULT_RESOLUTION,
                                         ZerothOrderEstimator, program_frames)
from arnn_tf.black_box.queries import (LocalQuery, QueryError, QueryFunction, check_frames,
                                       checked_answer, log_probabilities)
from arnn_tf.black_box.trainer import BlackBoxTrainer

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_DIRECTIONS",
    "DEFAULT_RESOLUTION",
    "BlackBoxTrainer",
    "LocalQuery",
    "QueryError",
    "QueryFunction",
    "ZerothOrderEstimator",
    "check_frames",
    "checked_answer",
    "log_probabilities",
    "program_frames",
]
