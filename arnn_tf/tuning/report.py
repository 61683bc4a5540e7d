"""What a finished search leaves: the leaderboard, the best trial's summary and program.

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

from arnn_tf.programs import SavedProgram
from arnn_tf.tasks import Task
from arnn_tf.training import evaluate_program
from arnn_tf.tuning.space import SearchSpace
from arnn_tf.tuning.tuner import ProgramTuner


def leaderboard_rows(oracle: keras_tuner.Oracle, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial, in trial order: id, status, objective, best epoch and
    hyper-parameters."""
    objective = oracle.objective.name
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        done = trial.status == "COMPLETED" and trial.score is not None
        row = {"trial_id": trial_id, "status": trial.status, objective: trial.score if done else "",
               "best_epoch": trial.best_step if done else ""}
        row.update({p.name: trial.hyperparameters.values.get(p.name, "") for p in space.parameters})
        row.update({k: v for k, v in trial.hyperparameters.values.items()
                    if k.startswith("tuner/")})
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


def train_command_for(values: dict[str, Any], task: str, backbone: str, weights: str | None) -> str:
    """The `arnn train` command that retrains a program with these hyper-parameters."""
    parts = ["arnn train", f"--task {task}", f"--backbone {backbone}",
             f"--weights {weights or 'none'}", f"--lr {values['learning_rate']:.6g}",
             f"--l2 {values['l2']:.6g}", f"--label-map {values['label_map']}",
             f"--batch-size {values['batch_size']}"]
    for name, flag in (("image_size", "--image-size"), ("border_width", "--border-width"),
                       ("linf_bound", "--linf-bound")):
        if values[name]:
            parts.append(f"{flag} {values[name]}")
    return " ".join(parts)


def write_results(tuner: ProgramTuner, task: Task, space: SearchSpace, out: Path, *,
                  task_spec: str, backbone: str, weights: str | None) -> dict[str, Any]:
    """Leaderboard, best hyper-parameters and the best program, evaluated on the real test
    split."""
    oracle = tuner.oracle
    rows = leaderboard_rows(oracle, space)
    write_leaderboard(rows, out / "leaderboard.csv")
    best = oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        raise ValueError(f"no trial completed; see {out / 'leaderboard.csv'}")
    trial = best[0]
    values = {p.name: trial.hyperparameters.values[p.name] for p in space.parameters}
    test = evaluate_program(tuner.load_model(trial), task, "test", verbose=0)
    summary = {
        "trial_id": trial.trial_id, "objective": oracle.objective.name,
        "direction": oracle.objective.direction, "value": trial.score,
        "best_epoch": trial.best_step, "hyperparameters": values,
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "test_examples": task.num_examples("test"),
        "completed_trials": sum(row["status"] == "COMPLETED" for row in rows), "trials": len(rows),
        "train_command": train_command_for(values, task_spec, backbone, weights),
    }
    saved = SavedProgram.load(tuner.program_dir(trial.trial_id))
    saved.metrics = {"task": task.name, "backbone": backbone, **summary}
    saved.save(out / "best_program")
    (out / "best_hparams.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"best trial {trial.trial_id}: {oracle.objective.name} {trial.score:.4f}, test accuracy "
          f"{test['accuracy']:.4f}; wrote {out / 'best_hparams.json'}, {out / 'leaderboard.csv'} "
          f"and {out / 'best_program'}")
    return summary
