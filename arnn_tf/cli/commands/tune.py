"""``arnn tune``: a search of recipe fields with Keras Tuner, from the command line.

Turns the options into a base recipe and a search space and hands them to
`arnn_tf.tuning.search.tune`; errors met here name the options to change.
"""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.cli.arguments import non_negative_int, positive_int
from arnn_tf.cli.commands.options import add_data_dir_argument
from arnn_tf.recipes import RECIPES, TASK_TO_SET, load_recipe
from arnn_tf.settings import DEFAULT_SPACE_FILE, DEFAULT_TRIAL_STEPS, MAX_VALIDATION_SIZE, TUNERS

OVERRIDES = ("task", "backbone", "weights", "seed")
"""The recipe fields ``arnn tune`` sets from options of the same names."""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn tune``: a base recipe, the fields the space file varies, and the search."""
    base = "paper"
    tune = commands.add_parser(
        "tune",
        help="search recipe fields with Keras Tuner",
        description=f"Search the recipe fields the space file names, around a base recipe "
        f"(default: {base}); the best trial is saved as a recipe to train with "
        "arnn train --recipe.",
    )
    tune.add_argument(
        "--recipe",
        default=base,
        metavar="NAME|FILE|PROGRAM",
        help=f"the base recipe: a named recipe ({', '.join(RECIPES)}), a recipe "
        f"JSON file or a saved program; default {base}",
    )
    tune.add_argument(
        "--task",
        help="default: the recipe's (counting, mnist, cifar10, "
        "shuffled_mnist, tfds:NAME or folder:PATH)",
    )
    tune.add_argument("--backbone", help="default: the recipe's (see `arnn backbones`)")
    tune.add_argument(
        "--weights", help="default: the recipe's ('imagenet', 'none' or a Keras weights file)"
    )
    tune.add_argument("--seed", type=non_negative_int, help="default: the recipe's")
    _add_search_options(tune)
    return tune


def _add_search_options(tune: argparse.ArgumentParser) -> None:
    """How ``arnn tune`` searches: the tuner, trials, their length, objective and space."""
    tune.add_argument("--tuner", choices=TUNERS, default="random")
    tune.add_argument(
        "--max-trials",
        type=positive_int,
        default=10,
        help="trials in all (rerun with more to extend a search)",
    )
    length = tune.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=positive_int,
        help=f"training batches per trial (default {DEFAULT_TRIAL_STEPS})",
    )
    length.add_argument(
        "--epochs", type=positive_int, help="passes over the training split per trial"
    )
    tune.add_argument(
        "--objective",
        default="val_accuracy",
        help="a metric of the trials, e.g. val_accuracy or val_loss",
    )
    tune.add_argument(
        "--space",
        default=str(DEFAULT_SPACE_FILE),
        help="search-space JSON file: recipe fields and their values (tuning/README.md)",
    )
    tune.add_argument(
        "--val-size",
        type=positive_int,
        help=f"train images held out to score trials (default 10%%, at most {MAX_VALIDATION_SIZE})",
    )
    tune.add_argument(
        "--out", required=True, help="search folder; rerun with the same one to resume"
    )
    add_data_dir_argument(tune)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs (or resumes) the search ``args`` describe, writing its results to ``args.out``.

    The base recipe is ``--recipe`` with ``--task``, ``--backbone``, ``--weights`` and
    ``--seed`` applied; trials set the space file's fields on it.
    """
    from arnn_tf.tuning.search import tune
    from arnn_tf.tuning.space import SearchSpace

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
