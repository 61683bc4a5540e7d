"""Black-box reprogramming: training a program with nothing but the model's answers.

`queries` defines what may be asked (`QueryFunction`: frames in, logits out) and answers it
in process (`LocalQuery`); `rest_query` and `grpc_query` ask a TF Serving model server
(`RestQuery`, `GrpcQuery`);
`estimator` turns losses at perturbed program weights into a gradient estimate
(`ZerothOrderEstimator`, BAR's); `trainer` is the `BlackBoxTrainer`, a
`arnn_tf.training.trainer.Trainer` that learns through one query per step.

The names below are imported on first use, so `arnn_tf.black_box.defaults` (what recipes
read) comes without Keras or TensorFlow.
"""

from arnn_tf.black_box.defaults import (
    DEFAULT_BETA,
    DEFAULT_DIRECTIONS,
    DEFAULT_MAP_WARMUP_SHARE,
    DEFAULT_PROGRAM_LR_SCALE,
    DEFAULT_ZO_RESOLUTION,
)

_MODULES = {
    "ZerothOrderEstimator": "estimator",
    "program_frames": "estimator",
    "LocalQuery": "queries",
    "QueryError": "queries",
    "QueryFunction": "queries",
    "check_frames": "queries",
    "checked_answer": "queries",
    "log_probabilities": "queries",
    "BlackBoxTrainer": "trainer",
    "StandIn": "stand_in",
    "RestQuery": "rest_query",
    "GrpcQuery": "grpc_query",
}

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_DIRECTIONS",
    "DEFAULT_MAP_WARMUP_SHARE",
    "DEFAULT_PROGRAM_LR_SCALE",
    "DEFAULT_ZO_RESOLUTION",
    *sorted(_MODULES),
]


def __getattr__(name: str) -> object:
    """`BlackBoxTrainer`, `LocalQuery`, ...: imported from their module on first use."""
    if name not in _MODULES:
        raise AttributeError(f"module 'arnn_tf.black_box' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"arnn_tf.black_box.{_MODULES[name]}"), name)
