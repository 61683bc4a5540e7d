"""`train`: what `arnn train` does, as one library call on a `Recipe` (TensorFlow-specific).

The recipe decides what the run learns; the keyword arguments decide where and how it runs.
A run writes ``OUT/program/`` (the saved program, with its recipe), ``OUT/metrics.json``,
``OUT/checkpoint/`` and TensorBoard logs; calling `train` again with the same recipe and
output folder resumes it, or, when it had finished, evaluates and saves it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras

from arnn_tf.backbones import build_backbone
from arnn_tf.distribute import is_chief, make_strategy, set_precision
from arnn_tf.images import read_image
from arnn_tf.label_maps import data_driven_kind
from arnn_tf.model import ReprogrammedModel, build_reprogrammed_model
from arnn_tf.programs import SavedProgram
from arnn_tf.recipes import Recipe, require_task
from arnn_tf.settings import DEFAULT_CONCEAL_SCALE
from arnn_tf.summaries import ProgramSummaries
from arnn_tf.tasks import Task, get_task
from arnn_tf.trainers import Trainer, WhiteBoxTrainer
from arnn_tf.training import TrainingResult, evaluate_parts, evaluate_program


def default_out(recipe: Recipe) -> Path:
    """``runs/TASK-BACKBONE``, the task spec made safe for a folder name."""
    return Path("runs") / f"{recipe.task.replace(':', '_').replace('/', '_')}-{recipe.backbone}"


def train(
    recipe: Recipe,
    out: str | Path | None = None,
    *,
    init_program: str | Path | None = None,
    max_minutes: float | None = None,
    data_dir: str | None = None,
    strategy: str = "auto",
    precision: str = "float32",
    logdir: str | Path | None = None,
    checkpoint_every: int = 100,
    trainer: Trainer | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Trains ``recipe`` into ``out`` (default `default_out`) and returns its metrics.

    ``init_program`` starts W (and a learned map) from a saved program; ``max_minutes`` stops
    training early, then evaluates and saves as usual; ``strategy`` and ``precision`` are
    `arnn_tf.distribute`'s; checkpoints go to ``OUT/checkpoint`` every ``checkpoint_every``
    steps; ``trainer`` (default `WhiteBoxTrainer`) is how the program learns. Under a
    multi-worker strategy only the chief writes anything.
    """
    out = Path(out) if out is not None else default_out(recipe)
    distribution = make_strategy(strategy)
    task = _task(recipe, data_dir)
    chief = is_chief(distribution)
    set_precision(precision)
    settings = {**_hparams(recipe), "task": task.name, "precision": precision}
    settings.update(strategy=strategy, init_program=init_program and str(init_program))
    with distribution.scope():
        model = build_model(recipe, task, init_program)
        summaries = None
        if chief:
            ((samples, _),) = list(task.sample("train", 3, 3, shuffle=False))
            summaries = ProgramSummaries(logdir or out / "logs", samples.numpy(), hparams=settings)
        result = (trainer or WhiteBoxTrainer()).fit(
            model,
            task,
            recipe,
            callbacks=[summaries] if summaries else [],
            checkpoint_dir=out / "checkpoint",
            checkpoint_every=checkpoint_every,
            save_checkpoints=chief,
            max_minutes=max_minutes,
            verbose=verbose and chief,
        )
        if result.stopped_by_time and verbose and chief:
            print(
                f"stopped at step {result.steps}: the time limit ({max_minutes} minutes) was "
                "reached; run the same command again to continue"
            )
        test = evaluate_program(model, task, verbose=verbose and chief)
    metrics = _metrics(settings, result, test, task, distribution.num_replicas_in_sync)
    if task.parts:
        metrics["test_accuracy_per_task"] = evaluate_parts(model, task)
    if chief:
        summaries.write_test_metrics(test, step=result.steps)
        _save(model, recipe, task, metrics, out)
    return metrics


def build_model(
    recipe: Recipe,
    task: Task,
    init_program: str | Path | None = None,
    backbone: keras.Model | None = None,
) -> ReprogrammedModel:
    """The untrained model ``recipe`` describes for ``task`` (or started from ``init_program``),
    on ``backbone`` when given (models that share one frozen network, as tuning trials do),
    else on the recipe's backbone, built here."""
    if backbone is None:
        backbone = build_backbone(recipe.backbone, recipe.weights, seed=recipe.seed)
    frame = int(backbone.input_shape[1])
    host_image = None if recipe.conceal is None else read_image(recipe.conceal, (frame, frame), 3)
    image_size = None if recipe.image_size is None else (recipe.image_size, recipe.image_size)
    model = build_reprogrammed_model(
        backbone,
        task.image_shape,
        task.num_classes,
        label_map=recipe.label_map,
        seed=recipe.seed,
        host_image=host_image,
        conceal_scale=recipe.conceal_scale or DEFAULT_CONCEAL_SCALE,
        image_size=image_size,
        border_width=recipe.border_width,
        linf_bound=recipe.linf_bound,
        program_covers_image=recipe.full_program,
        l2=recipe.l2,
        flip_average=recipe.flip_average,
    )
    if init_program is not None:
        SavedProgram.load(init_program).warm_start(
            model, relabel=data_driven_kind(recipe.label_map) is not None
        )
    return model


def _task(recipe: Recipe, data_dir: str | None) -> Task:
    """The recipe's task, refusing the ``folder`` recipe's placeholder."""
    return get_task(require_task(recipe), data_dir=data_dir, seed=recipe.seed)


def _hparams(recipe: Recipe) -> dict[str, Any]:
    """The recipe's fields as scalars (TensorBoard's HParams tab and ``metrics.json``)."""
    values = recipe.to_dict()
    values["recipe"] = values.pop("name")
    values["augment"] = ",".join(recipe.augment) or None
    if recipe.conceal is not None and recipe.conceal_scale is None:
        values["conceal_scale"] = DEFAULT_CONCEAL_SCALE
    return values


def _metrics(
    settings: dict[str, Any],
    result: TrainingResult,
    test: dict[str, float],
    task: Task,
    replicas: int,
) -> dict[str, Any]:
    return {
        **settings,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "seconds": round(result.seconds, 2),
        "images_per_second": round(result.images_per_second, 2),
        "train_accuracy": result.train_accuracy,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_examples": task.num_examples("test"),
        "stopped_by_time": result.stopped_by_time,
        "replicas": replicas,
    }


def _save(
    model: keras.Model, recipe: Recipe, task: Task, metrics: dict[str, Any], out: Path
) -> None:
    SavedProgram.from_model(
        model,
        backbone_name=recipe.backbone,
        weights=recipe.weights,
        seed=recipe.seed,
        task_name=task.name,
        class_names=list(task.class_names),
        label_map_spec=recipe.label_map,
        metrics=metrics,
        parts=task.parts,
        recipe=recipe.to_dict(),
    ).save(out / "program")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
