"""`train`: what `arnn train` does, as one library call on a `Recipe` (TensorFlow-specific).

The recipe decides what the run learns; the keyword arguments decide where and how it runs.
A run writes ``OUT/program/`` (the saved program, with its recipe), ``OUT/metrics.json``,
``OUT/checkpoint/`` and TensorBoard logs; calling `train` again with the same recipe and
output folder resumes it, or, when it had finished, evaluates and saves it again.

The recipe's ``trainer`` says how the program learns (`make_trainer`): "white_box" by
backpropagation, "black_box" through a query function alone (`arnn_tf.black_box`), by
default `LocalQuery` on the run's own backbone; any `QueryFunction` can be passed instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.black_box.queries import LocalQuery, QueryFunction
from arnn_tf.black_box.stand_in import StandIn
from arnn_tf.black_box.trainer import BlackBoxTrainer
from arnn_tf.label_maps.specs import data_driven_kind
from arnn_tf.modalities.registry import modality
from arnn_tf.models.reprogrammed import (
    ReprogrammedModel,
    frame_program_for,
    part_label_maps,
    program_code,
)
from arnn_tf.programs.parts import saved_parts
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import (
    BLACK_BOX_FIELDS,
    Recipe,
    conceal_scale,
    map_refit,
    program_first_moment,
    program_rate_scale,
)
from arnn_tf.tasks.base import Task
from arnn_tf.tasks.specs import recipe_task
from arnn_tf.training.distribute import is_chief, make_strategy, set_precision
from arnn_tf.training.evaluation import test_results
from arnn_tf.training.results import TrainingResult
from arnn_tf.training.summaries import ProgramSummaries
from arnn_tf.training.trainer import Trainer
from arnn_tf.training.white_box import WhiteBoxTrainer


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
    query: QueryFunction | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Trains ``recipe`` into ``out`` (default `default_out`) and returns its metrics.

    ``init_program`` starts W (and a learned map) from a saved program; ``max_minutes`` stops
    training early, then evaluates and saves as usual; ``strategy`` and ``precision`` are
    `arnn_tf.training.distribute`'s; checkpoints go to ``OUT/checkpoint`` every ``checkpoint_every``
    steps; ``trainer`` (default `make_trainer`'s, the recipe's) is how the program learns, or
    ``query`` what the recipe's black-box trainer asks. Only a multi-worker chief writes.
    """
    if trainer is not None and query is not None:
        raise ValueError("pass a trainer or a query function for the recipe's trainer, not both")
    out = Path(out) if out is not None else default_out(recipe)
    distribution = _strategy(recipe, strategy)
    task = recipe_task(recipe, data_dir)
    chief = is_chief(distribution)
    set_precision(precision)
    settings = {**_hparams(recipe), "task": task.name, "precision": precision}
    settings.update(strategy=strategy, init_program=init_program and str(init_program))
    start = None if init_program is None else SavedProgram.load(init_program)
    with distribution.scope():
        model = build_model(recipe, task, start)
        _say_input_notes(task, model, verbose and chief)
        trainer = trainer or make_trainer(recipe, model, query)
        summaries = _summaries(task, logdir or out / "logs", settings) if chief else None
        result = trainer.fit(
            model,
            task,
            recipe,
            callbacks=[summaries] if summaries else [],
            checkpoint_dir=out / "checkpoint",
            checkpoint_every=checkpoint_every,
            save_checkpoints=chief,
            max_minutes=max_minutes,
            verbose=verbose and chief,
            map_trained=start is not None and all(p.learned_map is not None for p in start.parts),
        )
        if verbose and chief:
            _say_why_stopped(result, trainer, recipe, max_minutes)
        test, per_task = test_results(model, task, verbose=verbose and chief)
    metrics = _metrics(settings, result, test, task, distribution.num_replicas_in_sync, trainer)
    metrics.update(per_task)
    if chief:
        summaries.write_test_metrics(test, step=result.steps)
        _save(model, recipe, task, metrics, out)
    return metrics


def _summaries(task: Task, logdir: str | Path, settings: dict[str, Any]) -> ProgramSummaries:
    """TensorBoard logging for the run, showing three training examples as the network sees
    them."""
    examples = 3 * len(task.part_tasks)  # three of each part
    ((samples, _),) = list(task.sample("train", 3, examples, shuffle=False))
    samples = keras.tree.map_structure(lambda t: t.numpy(), samples)
    return ProgramSummaries(logdir, samples, hparams=settings)


def make_trainer(
    recipe: Recipe, model: ReprogrammedModel, query: QueryFunction | None = None
) -> Trainer:
    """The trainer ``recipe.trainer`` names: `WhiteBoxTrainer`, or a `BlackBoxTrainer` with the
    recipe's estimator and budget asking ``query`` (default `LocalQuery` on ``model``'s
    backbone: queries answered in this process), and its stand-in network if it names one."""
    if recipe.trainer == "white_box":
        if query is not None:
            raise ValueError(
                "a query function is for black-box training: the recipe's trainer is "
                "'white_box' (set its trainer to 'black_box')"
            )
        return WhiteBoxTrainer()
    return BlackBoxTrainer(
        query if query is not None else LocalQuery(model.backbone),
        directions=recipe.directions,
        beta=recipe.beta,
        antithetic=recipe.antithetic,
        per_image_directions=recipe.per_image_directions,
        zo_resolution=recipe.zo_resolution,
        zo_clip=recipe.zo_clip,
        max_queries=recipe.max_queries,
        stand_in=_stand_in(recipe, model),
        map_refit_epochs=map_refit(recipe),
        jacobian_memory=recipe.jacobian_memory,
        guide_rank=recipe.guide_rank,
        guide_share=recipe.guide_share,
    )


def _stand_in(recipe: Recipe, model: ReprogrammedModel) -> StandIn | None:
    """The recipe's local stand-in network, built at the model's frame, or None."""
    if recipe.stand_in is None:
        return None
    frame = model.program.frame_size
    network = build_backbone(recipe.stand_in, recipe.weights, seed=recipe.seed, input_size=frame)
    return StandIn(network, recipe.stand_in_rate)


def _strategy(recipe: Recipe, name: str) -> tf.distribute.Strategy:
    """`make_strategy`'s ``name``; a black-box run is one loop on one device: ``auto`` is then
    TensorFlow's default strategy, and the multi-replica strategies are refused."""
    if recipe.trainer != "black_box":
        return make_strategy(name)
    if name in ("mirrored", "multi_worker"):
        raise ValueError(
            f"black-box training runs on one device (its cost is its queries), so strategy "
            f"{name!r} has nothing to share out; use 'auto' or 'one_device'"
        )
    return make_strategy(name) if name == "one_device" else tf.distribute.get_strategy()


def _say_why_stopped(
    result: TrainingResult, trainer: Trainer, recipe: Recipe, max_minutes: float | None
) -> None:
    """A line when training stopped short: at the time limit or the query budget."""
    if result.stopped_by_time:
        reason = f"the time limit ({max_minutes} minutes) was reached"
    elif getattr(trainer, "stopped_by_queries", False):
        reason = f"the query budget (max_queries {recipe.max_queries} frames) was spent"
    else:
        return
    print(f"stopped at step {result.steps}: {reason}; run the same command again to continue")


def _query_metrics(trainer: Trainer) -> dict[str, Any]:
    """A query-only trainer's cost: the frames this process sent, whether the budget stopped
    it, and the steps W was held while the map learned alone; nothing for a white-box
    trainer."""
    queries = getattr(trainer, "queries", None)
    if queries is None:
        return {}
    return {
        "queries": int(queries),
        "stopped_by_queries": bool(getattr(trainer, "stopped_by_queries", False)),
        "map_warmup_steps": int(getattr(trainer, "map_warmup_steps", 0)),
    }


def _say_input_notes(task: Task, model: keras.Model, verbose: bool) -> None:
    """Prints, if ``verbose``, what the task says of its inputs under the model's encoders
    (cut texts)."""
    for note in task.input_notes(model.encoders) if verbose else ():
        print(f"note: {note}")


def build_model(
    recipe: Recipe,
    task: Task,
    init_program: str | Path | SavedProgram | None = None,
    backbone: keras.Model | None = None,
) -> ReprogrammedModel:
    """The untrained model ``recipe`` describes for ``task`` (or started from ``init_program``,
    a saved program or its folder), on ``backbone`` when given (models that share one frozen
    network, as tuning trials do), else on the recipe's backbone, built here."""
    if backbone is None:
        backbone = build_backbone(
            recipe.backbone, recipe.weights, seed=recipe.seed, input_size=recipe.frame_size
        )
    build = _multi_part_model if len(task.part_tasks) > 1 else modality(task.modality).model_for
    model = build(recipe, task, backbone)
    if init_program is not None:
        if not isinstance(init_program, SavedProgram):
            init_program = SavedProgram.load(init_program)
        init_program.warm_start(model, relabel=data_driven_kind(recipe.label_map) is not None)
    return model


def _multi_part_model(recipe: Recipe, task: Any, backbone: keras.Model) -> ReprogrammedModel:
    """A multi-part task's model: each part's encoder and map, one frame program for all."""
    frame = int(backbone.input_shape[1])
    parts = list(enumerate(task.part_tasks))
    encoders = [
        modality(t.modality).encoder_for(recipe, t, frame, f"part{i}_encoder") for i, t in parts
    ]
    # a concealed program is bounded by the host photo's weight, as a part alone is
    bound = recipe.linf_bound if recipe.conceal is None else conceal_scale(recipe)
    program = frame_program_for(
        encoders, bound, recipe.l2, program_code(recipe), recipe.part_regions
    )
    maps = part_label_maps(
        recipe.label_map,
        [t.num_classes for _, t in parts],
        recipe.seed,
        int(backbone.output_shape[-1]),
        [f"part{i}_map" for i, _ in parts],
    )
    return ReprogrammedModel(program, backbone, maps, encoders, recipe.flip_average)


def _hparams(recipe: Recipe) -> dict[str, Any]:
    """The recipe's fields as scalars (TensorBoard's HParams tab and ``metrics.json``)."""
    values = recipe.to_dict()
    values["recipe"] = values.pop("name")
    values["augment"] = ",".join(recipe.augment) or None
    if recipe.trainer != "black_box":  # the estimator's fields play no part
        for field in BLACK_BOX_FIELDS:
            del values[field]
    if recipe.loss != "focal":
        del values["focal_gamma"]
    values["program_lr_scale"] = program_rate_scale(recipe)
    values["program_momentum"] = program_first_moment(recipe)
    values["map_warmup_steps"] = recipe.map_warmup_steps or 0  # a black-box run says its own
    if recipe.trainer == "black_box":
        values["map_refit_epochs"] = map_refit(recipe)
    values["conceal_scale"] = conceal_scale(recipe)
    return values


def _metrics(
    settings: dict[str, Any],
    result: TrainingResult,
    test: dict[str, float],
    task: Task,
    replicas: int,
    trainer: Trainer,
) -> dict[str, Any]:
    return {
        **settings,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "seconds": round(result.seconds, 2),
        "total_seconds": round(result.total_seconds, 2),
        "images_per_second": round(result.images_per_second, 2),
        "train_accuracy": result.train_accuracy,
        **{f"test_{key}": value for key, value in test.items()},
        "test_examples": task.num_examples("test"),
        "stopped_by_time": result.stopped_by_time,
        "replicas": replicas,
        **_query_metrics(trainer),
    }


def saved_program(
    model: keras.Model, recipe: Recipe, task: Task, metrics: dict[str, Any]
) -> SavedProgram:
    """The trained ``model`` as a saved program that keeps ``recipe`` and ``metrics``."""
    tasks = task.part_tasks
    names, inputs = [t.name for t in tasks], [t.input_state for t in tasks]
    return SavedProgram.from_parts(
        model,
        saved_parts(model, names, [t.class_names for t in tasks], inputs),
        backbone_name=recipe.backbone,
        weights=recipe.weights,
        seed=recipe.seed,
        task_name=task.name,
        label_map=recipe.label_map,
        metrics=metrics,
        joined=task.parts if len(tasks) == 1 else (),
        recipe=recipe.to_dict(),
    )


def _save(
    model: keras.Model, recipe: Recipe, task: Task, metrics: dict[str, Any], out: Path
) -> None:
    saved_program(model, recipe, task, metrics).save(out / "program")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
