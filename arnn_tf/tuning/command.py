"""``arnn tune``: the command line's search (its options: `arnn_tf.parsers`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from arnn_tf.backbones import build_backbone, get_backbone_spec
from arnn_tf.settings import DEFAULT_TRIAL_STEPS
from arnn_tf.tasks import get_task
from arnn_tf.tuning.dashboard import write_hparams_config
from arnn_tf.tuning.holdout import default_validation_size, holdout_split
from arnn_tf.tuning.hypermodel import ReprogrammingHyperModel
from arnn_tf.tuning.report import write_results
from arnn_tf.tuning.space import SearchSpace
from arnn_tf.tuning.tuner import ProgramTuner, make_oracle

HYPERBAND_ROUNDS = 9
"""With ``--steps N``, Hyperband's longest trials train N steps in this many rounds (its
epochs)."""
PROJECT_NAME = "trials"
"""Keras Tuner's project folder inside ``--out``: oracle state and one folder per trial."""


def _check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Records the search's settings, or refuses to resume a search made with other settings."""
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(key for key in set(old) | set(settings)
                         if old.get(key) != settings.get(key))
        if changed:
            raise ValueError(f"{path.parent} holds a search with other settings "
                             f"({', '.join(changed)} differ); rerun with the same settings to "
                             "resume it, or use another --out")
        return
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as f:
        f.write(json.dumps(settings, indent=2) + "\n")
    os.replace(f.name, path)


def is_distributed_worker() -> bool:
    """Whether Keras Tuner's environment makes this process a worker of a distributed search."""
    return ("KERASTUNER_ORACLE_IP" in os.environ
            and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", ""))


def tune_command(args: argparse.Namespace) -> dict[str, Any]:
    """Runs (or resumes) a search and writes its results to ``args.out``.

    Writes ``best_hparams.json``, ``leaderboard.csv``, ``best_program/`` (a saved program,
    evaluated on the task's real test split) and TensorBoard logs in ``logs/``. Under Keras
    Tuner's distributed mode only the chief writes the summary; workers just run trials.
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = get_task(args.task, data_dir=args.data_dir, seed=args.seed)
    val_size = args.val_size or default_validation_size(task)
    space = SearchSpace.load(args.space).fit_to(get_backbone_spec(args.backbone).input_size,
                                                task.num_classes)
    if args.epochs is not None:
        epochs, per_epoch = args.epochs, None
    else:
        steps = args.steps or DEFAULT_TRIAL_STEPS
        epochs = HYPERBAND_ROUNDS if args.tuner == "hyperband" else 1
        per_epoch = max(1, math.ceil(steps / epochs))
    _check_settings(out / "search.json", {
        "task": args.task, "backbone": args.backbone, "weights": args.weights,
        "tuner": args.tuner, "steps": args.steps, "epochs": args.epochs,
        "objective": args.objective, "val_size": val_size, "seed": args.seed,
        "space": space.to_dict()})
    backbone = build_backbone(args.backbone, args.weights, seed=args.seed)
    hypermodel = ReprogrammingHyperModel(backbone, holdout_split(task, val_size, args.seed), space,
                                         steps_per_epoch=per_epoch, seed=args.seed)
    oracle = make_oracle(args.tuner, args.objective, args.max_trials, epochs=epochs, seed=args.seed)
    tuner = ProgramTuner(oracle, hypermodel, epochs=epochs, log_dir=out / "logs",
                         backbone_name=args.backbone, weights=args.weights, seed=args.seed,
                         directory=str(out), project_name=PROJECT_NAME)
    is_worker = is_distributed_worker()
    if not is_worker and not any((out / "logs").glob("events.out.tfevents.*")):
        write_hparams_config(out / "logs", space, args.objective)
    tuner.search(verbose=2)
    if is_worker:
        return {}
    return write_results(tuner, task, space, out, task_spec=args.task, backbone=args.backbone,
                         weights=args.weights)
