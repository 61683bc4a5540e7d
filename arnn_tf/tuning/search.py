"""`tune`: what `arnn tune` does, as one library call on a base `Recipe`.

A search trains trials that are the base recipe with the space's values, scores them on a
held-out slice of the train split, and leaves the best trial's recipe, program and test
accuracy in its output folder; calling `tune` again with the same settings and folder
resumes it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from arnn_tf.backbones import get_backbone_spec
from arnn_tf.recipes import Recipe, RecipeError
from arnn_tf.settings import DEFAULT_TRIAL_STEPS
from arnn_tf.tasks.specs import recipe_task
from arnn_tf.tuning.dashboard import write_hparams_config
from arnn_tf.tuning.holdout import default_validation_size, holdout_split
from arnn_tf.tuning.hypermodel import ReprogrammingHyperModel
from arnn_tf.tuning.report import write_results
from arnn_tf.tuning.space import SearchSpace
from arnn_tf.tuning.tuner import ProgramTuner, make_oracle

HYPERBAND_ROUNDS = 9
"""Given trial steps N, Hyperband's longest trials train N steps in this many rounds (its
epochs)."""
PROJECT_NAME = "trials"
"""Keras Tuner's project folder inside the output folder: oracle state and one folder per
trial."""
SETTINGS_FILE = "search.json"


def tune(
    base: Recipe,
    out: str | os.PathLike[str],
    space: SearchSpace,
    *,
    tuner: str = "random",
    max_trials: int = 10,
    steps: int | None = None,
    epochs: int | None = None,
    objective: str = "val_accuracy",
    val_size: int | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) a search around ``base`` and returns the best trial's summary.

    Trials train ``steps`` batches (default `DEFAULT_TRIAL_STEPS`) or ``epochs`` passes over
    the train split, less its ``val_size`` held-out images (default 10%, at most 1000).
    Writes ``best_hparams.json``, ``best_recipe.json``, ``leaderboard.csv``, ``best_program/``
    (evaluated on the task's real test split) and TensorBoard logs in ``logs/``. Under Keras
    Tuner's distributed mode only the chief writes them (a worker returns an empty dict).
    """
    if base.trainer != "white_box":
        raise RecipeError(
            f"trials train white-box, but the base recipe's trainer is {base.trainer!r}; "
            "tune with a white-box base recipe"
        )
    if steps is not None and epochs is not None:
        raise ValueError(f"a trial trains steps or epochs, not both; got {steps} and {epochs}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = recipe_task(base, data_dir)
    val_size = val_size or default_validation_size(task)
    rounds, per_round = trial_rounds(tuner, steps, epochs)
    hypermodel = ReprogrammingHyperModel(
        base,
        holdout_split(task, val_size, base.seed),
        space.fit_to(base.frame_size or get_backbone_spec(base.backbone).input_size),
        steps_per_epoch=per_round,
        epochs=rounds,
    )
    shortest = 1 if tuner == "hyperband" else rounds
    hypermodel.space.check(base, lambda recipe: hypermodel.check_trial(recipe, shortest))
    settings = {"recipe": base.to_dict(), "tuner": tuner, "steps": steps, "epochs": epochs}
    settings.update(objective=objective, val_size=val_size, space=hypermodel.space.to_dict())
    check_settings(out / SETTINGS_FILE, settings)
    oracle = make_oracle(tuner, objective, max_trials, epochs=rounds, seed=base.seed)
    program_tuner = ProgramTuner(
        oracle,
        hypermodel,
        epochs=rounds,
        log_dir=out / "logs",
        directory=str(out),
        project_name=PROJECT_NAME,
    )
    worker = is_distributed_worker()
    if not worker and not any((out / "logs").glob("events.out.tfevents.*")):
        write_hparams_config(out / "logs", hypermodel.space, objective)
    program_tuner.search(verbose=2)
    return {} if worker else write_results(program_tuner, task, out)


def trial_rounds(tuner: str, steps: int | None, epochs: int | None) -> tuple[int, int | None]:
    """(rounds of the longest trial, steps per round or None for a pass over the train split).

    Random and Bayesian trials train their steps in one round; Hyperband's longest trials
    train them in `HYPERBAND_ROUNDS` rounds, its shortest in one.
    """
    if epochs is not None:
        return epochs, None
    rounds = HYPERBAND_ROUNDS if tuner == "hyperband" else 1
    return rounds, max(1, math.ceil((steps or DEFAULT_TRIAL_STEPS) / rounds))


def check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Records the search's settings, or refuses to resume a search made with other settings."""
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(
            key for key in set(old) | set(settings) if old.get(key) != settings.get(key)
        )
        if changed:
            raise ValueError(
                f"{path.parent} holds a search with other settings "
                f"({', '.join(changed)} differ); rerun with the same settings to "
                "resume it, or give another output folder"
            )
        return
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as f:
        f.write(json.dumps(settings, indent=2) + "\n")
    os.replace(f.name, path)


def is_distributed_worker() -> bool:
    """Whether Keras Tuner's environment makes this process a worker of a distributed search."""
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get(
        "KERASTUNER_TUNER_ID", ""
    )
