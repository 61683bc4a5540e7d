"""What a finished search leaves: the leaderboard, the best trial's summary, recipe and program.

The best program is evaluated here, once, on the task's real test split: the only time the
search touches it.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

import keras_tuner

from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import save_recipe
from arnn_tf.tasks.base import Task
from arnn_tf.training.evaluation import evaluate_program
from arnn_tf.tuning.space import SearchSpace
from arnn_tf.tuning.tuner import ProgramTuner

LEADERBOARD_FILE = "leaderboard.csv"
SUMMARY_FILE = "best_hparams.json"
BEST_RECIPE_FILE = "best_recipe.json"
BEST_PROGRAM_DIR = "best_program"


def leaderboard_rows(oracle: keras_tuner.Oracle, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial, in trial order: id, status, objective, best epoch and
    hyper-parameters."""
    objective = oracle.objective.name
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        done = trial.status == "COMPLETED" and trial.score is not None
        row = {
            "trial_id": trial_id,
            "status": trial.status,
            objective: trial.score if done else "",
            "best_epoch": trial.best_step if done else "",
        }
        row.update({p.name: trial.hyperparameters.values.get(p.name, "") for p in space.parameters})
        row.update(
            {k: v for k, v in trial.hyperparameters.values.items() if k.startswith("tuner/")}
        )
        rows.append(row)
    return rows


def write_leaderboard(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Writes ``rows`` as CSV, with every column any row has."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def rerun_command(recipe_file: Path) -> str:
    """The `arnn train` command that retrains the recipe in ``recipe_file`` from scratch."""
    return f"arnn train --recipe {recipe_file}"


def write_results(tuner: ProgramTuner, task: Task, out: Path) -> dict[str, Any]:
    """Leaderboard, the best trial's values and recipe, and its program evaluated on the real
    test split."""
    oracle = tuner.oracle
    space = tuner.hypermodel.space
    rows = leaderboard_rows(oracle, space)
    write_leaderboard(rows, out / LEADERBOARD_FILE)
    best = oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        raise ValueError(f"no trial completed; see {out / LEADERBOARD_FILE}")
    trial = best[0]
    recipe_file = save_recipe(tuner.trial_recipe(trial), out / BEST_RECIPE_FILE)
    test = evaluate_program(tuner.load_model(trial), task, "test", verbose=0)
    summary = {
        "trial_id": trial.trial_id,
        "objective": oracle.objective.name,
        "direction": oracle.objective.direction,
        "value": trial.score,
        "best_epoch": trial.best_step,
        "hyperparameters": {p.name: trial.hyperparameters.values[p.name] for p in space.parameters},
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_examples": task.num_examples("test"),
        "completed_trials": sum(row["status"] == "COMPLETED" for row in rows),
        "trials": len(rows),
        "recipe_file": str(recipe_file),
        "train_command": rerun_command(recipe_file),
    }
    saved = SavedProgram.load(tuner.program_dir(trial.trial_id))
    saved.metrics = {"task": task.name, "backbone": saved.backbone.name, **summary}
    saved.save(out / BEST_PROGRAM_DIR)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"best trial {trial.trial_id}: {oracle.objective.name} {trial.score:.4f}, test accuracy "
        f"{test['accuracy']:.4f}; wrote {out / SUMMARY_FILE}, {out / LEADERBOARD_FILE}, "
        f"{out / BEST_PROGRAM_DIR} and {recipe_file}; train it again with: "
        f"{summary['train_command']}"
    )
    return summary
