"""``arnn tune``: the command line's search (its options: `arnn_tf.parsers`).

Turns the options into a base recipe and a search space and hands them to
`arnn_tf.tuning.search.tune`; errors met here name the options to change.
"""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.recipes import TASK_TO_SET, load_recipe
from arnn_tf.tuning.search import tune
from arnn_tf.tuning.space import SearchSpace

OVERRIDES = ("task", "backbone", "weights", "seed")
"""The recipe fields ``arnn tune`` sets from options of the same names."""


def tune_command(args: argparse.Namespace) -> dict[str, Any]:
    """Runs (or resumes) the search ``args`` describe, writing its results to ``args.out``.

    The base recipe is ``--recipe`` with ``--task``, ``--backbone``, ``--weights`` and
    ``--seed`` applied; trials set the space file's fields on it.
    """
    base = load_recipe(args.recipe).replace(
        **{name: getattr(args, name) for name in OVERRIDES if getattr(args, name) is not None}
    )
    if base.task == TASK_TO_SET:
        raise ValueError(f"recipe {base.name!r} needs its task: --task folder:/your/images")
    return tune(
        base,
        args.out,
        SearchSpace.load(args.space),
        tuner=args.tuner,
        max_trials=args.max_trials,
        steps=args.steps,
        epochs=args.epochs,
        objective=args.objective,
        val_size=args.val_size,
        data_dir=args.data_dir,
    )
