"""Hyper-parameter search for reprogramming with Keras Tuner (`arnn tune`).

Reprogramming accuracy depends strongly on the learning rate, lambda, the label map and how
the task image is scaled, so those are searched over. The pieces:

- `SearchSpace`: the space, read from a JSON file users edit (``tuning/default_space.json``);
- `ReprogrammingHyperModel`: holds the frozen backbone, built once, and builds a fresh program
  and label map around it for every trial;
- `ProgramTuner`: a `keras_tuner.Tuner` whose trial checkpoints are `SavedProgram` folders
  (``W`` and settings, a few hundred kilobytes) instead of full-model weights, and which logs
  every trial to TensorBoard with its hyper-parameters for the HParams dashboard;
- `tune_command`: the ``arnn tune`` command (its options: `arnn_tf.parsers`).

Trials are scored on a seeded held-out slice of the task's train split (`holdout_split`),
never on its test split, which stays untouched until the best program is evaluated on it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from arnn_tf.backbones import build_backbone, get_backbone_spec
from arnn_tf.label_maps import SAMPLE_IMAGES, FrequencyLabelMapping, data_driven_kind, parse_label_map
from arnn_tf.model import ReprogrammedModel, build_reprogrammed_model
from arnn_tf.programs import SavedProgram
from arnn_tf.tasks import Task, get_task
from arnn_tf.settings import (DEFAULT_BATCH_SIZE, DEFAULT_L2, DEFAULT_LEARNING_RATE,
                              DEFAULT_TRIAL_STEPS, MAX_VALIDATION_SIZE, TUNERS)
from arnn_tf.training import evaluate_program, paper_learning_rate, steps_per_epoch

HYPERBAND_FACTOR = 3
HYPERBAND_ROUNDS = 9
"""With ``--steps N``, Hyperband's longest trials train N steps in this many rounds (its epochs)."""
VALIDATION_FRACTION = 0.1
VALIDATION_BATCH_SIZE = 64
LABEL_MAP_BATCH_SIZE = 100
TENSORBOARD_UPDATE_STEPS = 10
PROJECT_NAME = "trials"
"""Keras Tuner's project folder inside ``--out``: oracle state and one folder per trial."""

PARAMETER_DEFAULTS: dict[str, Any] = {
    "learning_rate": DEFAULT_LEARNING_RATE,
    "l2": DEFAULT_L2,
    "label_map": "first",
    "image_size": 0,
    "batch_size": DEFAULT_BATCH_SIZE,
    "border_width": 0,
    "linf_bound": 0.0,
}
"""Every tunable setting and its value when a space file leaves it out. For image_size,
border_width and linf_bound, 0 means "off" (native size, program everywhere, no bound)."""

_PARAMETER_TYPES = {name: type(value) for name, value in PARAMETER_DEFAULTS.items()}
_ENTRY_KEYS = {"min", "max", "sampling", "step", "values", "value", "help"}


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched setting: a range (min/max), a list of values, or one fixed value."""

    name: str
    min: float | None = None
    max: float | None = None
    sampling: str = "linear"
    step: float | None = None
    values: tuple[Any, ...] | None = None
    value: Any = None

    @classmethod
    def from_entry(cls, name: str, entry: dict[str, Any]) -> "Parameter":
        """Parses one entry of a space file, with errors that name the parameter."""
        if name not in PARAMETER_DEFAULTS:
            raise ValueError(f"unknown search-space parameter {name!r}; known: {', '.join(PARAMETER_DEFAULTS)}")
        if not isinstance(entry, dict) or set(entry) - _ENTRY_KEYS:
            raise ValueError(f"search-space entry {name!r} must be an object with keys from {sorted(_ENTRY_KEYS)}")
        kind = _PARAMETER_TYPES[name]
        forms = [key for key in ("min", "values", "value") if key in entry]
        if len(forms) != 1 or ("min" in entry) != ("max" in entry):
            raise ValueError(f"search-space entry {name!r} needs exactly one of min+max, values or value")
        try:
            if "values" in entry:
                values = tuple(_cast(kind, v) for v in entry["values"])
                if not values or len(set(values)) != len(values):
                    raise ValueError("values must be a non-empty list without repeats")
                return cls(name, values=values)
            if "value" in entry:
                return cls(name, value=_cast(kind, entry["value"]))
            if kind is str:
                raise ValueError("a text setting takes values or value, not a range")
            low, high = _cast(kind, entry["min"]), _cast(kind, entry["max"])
            sampling = entry.get("sampling", "linear")
            if not low < high or sampling not in ("linear", "log") or (sampling == "log" and low <= 0):
                raise ValueError("a range needs min < max, sampling 'linear' or 'log', and min > 0 for log")
            step = None if entry.get("step") is None else _cast(kind, entry["step"])
            return cls(name, min=low, max=high, sampling=sampling, step=step)
        except (TypeError, ValueError) as error:
            raise ValueError(f"search-space entry {name!r}: {error}") from None

    def declare(self, hp: keras_tuner.HyperParameters) -> Any:
        """Registers this parameter with ``hp`` and returns the trial's value."""
        if self.values is not None:
            return hp.Choice(self.name, list(self.values))
        if self.min is None:
            return hp.Fixed(self.name, self.value)
        if _PARAMETER_TYPES[self.name] is int:
            return hp.Int(self.name, int(self.min), int(self.max), step=self.step, sampling=self.sampling)
        return hp.Float(self.name, float(self.min), float(self.max), step=self.step, sampling=self.sampling)

    def hparams_domain(self) -> hparams_api.HParam:
        """The same parameter for TensorBoard's HParams dashboard."""
        if self.values is not None:
            domain: hparams_api.Domain = hparams_api.Discrete(list(self.values))
        elif self.min is None:
            domain = hparams_api.Discrete([self.value])
        elif _PARAMETER_TYPES[self.name] is int:
            domain = hparams_api.IntInterval(int(self.min), int(self.max))
        else:
            domain = hparams_api.RealInterval(float(self.min), float(self.max))
        return hparams_api.HParam(self.name, domain)

    def choices(self) -> tuple[Any, ...]:
        """Every value a trial can get when the parameter is not a range."""
        return self.values if self.values is not None else (self.value,)

    def to_entry(self) -> dict[str, Any]:
        """The space-file form, for recording a search's settings."""
        if self.values is not None:
            return {"values": list(self.values)}
        if self.min is None:
            return {"value": self.value}
        return {"min": self.min, "max": self.max, "sampling": self.sampling, "step": self.step}


def _cast(kind: type, value: Any) -> Any:
    """A JSON value as the parameter's type, refusing lossy conversions (1.5 as an int, 3 as text)."""
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"expected a whole number, got {value!r}")
    return kind(value)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """All tunable settings; those the file leaves out are fixed at `PARAMETER_DEFAULTS`."""

    parameters: tuple[Parameter, ...]

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "SearchSpace":
        """Reads ``{"parameters": {name: entry}}``; other top-level keys (e.g. "about") are notes."""
        entries = document.get("parameters") if isinstance(document, dict) else None
        if not isinstance(entries, dict):
            raise ValueError('a search space is a JSON object with a "parameters" object')
        given = {name: Parameter.from_entry(name, entry) for name, entry in entries.items()}
        return cls(tuple(given.get(name, Parameter(name, value=default))
                         for name, default in PARAMETER_DEFAULTS.items()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SearchSpace":
        """Reads a space file (see ``tuning/README.md`` for the format)."""
        try:
            document = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"search-space file not found: {path}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"search-space file {path} is not valid JSON: {error}") from None
        return cls.from_dict(document)

    def __getitem__(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"parameters": {p.name: p.to_entry() for p in self.parameters}}

    def fit_to(self, frame_size: int, num_classes: int) -> "SearchSpace":
        """This space with image sizes larger than the backbone's frame dropped, checked against the task.

        One space file then serves backbones of every input size; a label map that cannot
        serve the task, or an image size no value of which fits, is an error.
        """
        image = self["image_size"]
        if image.min is not None:
            if image.min > frame_size:
                raise ValueError(f"image_size range starts above the backbone's {frame_size}-pixel frame")
            image = dataclasses.replace(image, max=min(image.max, frame_size))
        else:
            fitting = tuple(v for v in image.choices() if v <= frame_size)
            if not fitting:
                raise ValueError(f"no image_size in {list(image.choices())} fits the backbone's {frame_size}-pixel frame")
            image = dataclasses.replace(image, values=fitting, value=None) if image.values else image
        for spec in self["label_map"].choices():
            parse_label_map(spec, num_classes)
        return SearchSpace(tuple(image if p.name == "image_size" else p for p in self.parameters))


def holdout_split(task: Task, size: int, seed: int = 0) -> Task:
    """``task`` with ``size`` seeded-random train images moved into its "test" split.

    Trials are scored on this held-out slice so that the real test split plays no part in
    choosing hyper-parameters. The choice is a numpy permutation, the same whatever
    TensorFlow's seeds, and the two parts never overlap.
    """
    total = task.num_examples("train")
    if not 0 < size < total:
        raise ValueError(f"the validation slice must hold 1..{total - 1} of the {total} train images, got {size}")
    held = np.zeros(total, dtype=bool)
    held[np.random.default_rng(seed).choice(total, size=size, replace=False)] = True
    mask = tf.constant(held)

    def load(split: str) -> tf.data.Dataset:
        keep = split == "test"

        def in_split(index: tf.Tensor, example: Any) -> tf.Tensor:
            return tf.equal(mask[index], keep)

        def without_index(index: tf.Tensor, example: Any) -> Any:
            return example

        ds = task._load("train").enumerate().filter(in_split).map(without_index)
        return ds.apply(tf.data.experimental.assert_cardinality(size if keep else total - size))

    return Task(task.name, task.image_shape, task.class_names, load)


def default_validation_size(task: Task) -> int:
    """10% of the train split, at most `MAX_VALIDATION_SIZE` images."""
    return max(1, min(MAX_VALIDATION_SIZE, round(VALIDATION_FRACTION * task.num_examples("train"))))


class ReprogrammingHyperModel(keras_tuner.HyperModel):
    """Builds a reprogrammed model for each trial around one shared frozen backbone.

    Args:
        backbone: the frozen backbone, built once by the caller.
        task: trained on its "train" split and scored on its "test" split (pass a
            `holdout_split` so the real test split stays out of the search).
        space: the search space (see `SearchSpace.fit_to`).
        steps_per_epoch: batches per Keras epoch; None for one pass over the train split.
        seed: seeds data shuffling and random label maps.
    """

    def __init__(self, backbone: keras.Model, task: Task, space: SearchSpace, *,
                 steps_per_epoch: int | None = None, seed: int = 0) -> None:
        super().__init__(name="reprogramming")
        self.backbone = backbone
        self.task = task
        self.space = space
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed

    def build(self, hp: keras_tuner.HyperParameters) -> ReprogrammedModel:
        values = {p.name: p.declare(hp) for p in self.space.parameters}
        size = values["image_size"]
        model = build_reprogrammed_model(
            self.backbone, self.task.image_shape, self.task.num_classes, label_map=values["label_map"],
            seed=self.seed, image_size=(size, size) if size else None,
            border_width=values["border_width"] or None, linf_bound=values["linf_bound"] or None, l2=values["l2"])
        full_epoch = steps_per_epoch(self.task.num_examples("train"), values["batch_size"])
        model.compile(optimizer=keras.optimizers.Adam(paper_learning_rate(values["learning_rate"], full_epoch)))
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: ReprogrammedModel, *args: Any,
            **kwargs: Any) -> keras.callbacks.History:
        """Trains on the task's train split and validates on its "test" split after every epoch.

        ``kwargs`` go to `model.fit` (epochs, initial_epoch, callbacks, verbose). Data-driven
        label maps (``frequency[:K]``, ``iterative[:K]``) are computed from the train split as
        in `arnn_tf.training.fit_program`; a continued trial (``initial_epoch > 0``) keeps a
        frequency map it was given, and recomputes an iterative one before its first epoch as
        an uninterrupted trial would. The remapping runs after the other callbacks, so a checkpoint holds
        the map its validation score was measured with.
        """
        batch_size = hp.get("batch_size")
        train = self.task.dataset("train", batch_size, shuffle=True, repeat=True, seed=self.seed,
                                  drop_remainder=True)
        validation = self.task.dataset("test", VALIDATION_BATCH_SIZE)
        per_epoch = self.steps_per_epoch or steps_per_epoch(self.task.num_examples("train"), batch_size)
        callbacks = list(kwargs.pop("callbacks", []))
        data_driven = data_driven_kind(hp.get("label_map"))
        if data_driven is not None:
            kind, per_class = data_driven
            callbacks.append(FrequencyLabelMapping(
                self.task.sample("train", SAMPLE_IMAGES, LABEL_MAP_BATCH_SIZE, seed=self.seed), per_class,
                iterative=kind == "iterative", steps_per_epoch=per_epoch,
                first_step=kwargs.get("initial_epoch", 0) * per_epoch))
        return model.fit(train, validation_data=validation, steps_per_epoch=per_epoch, shuffle=False,
                         callbacks=callbacks, **kwargs)


class SaveBestProgram(keras.callbacks.Callback):
    """Hands the model to `ProgramTuner.save_model` whenever the objective improves.

    Replaces Keras Tuner's `SaveBestEpoch`, which saves the weights of the whole model,
    frozen backbone included, in every trial's folder.
    """

    def __init__(self, tuner: "ProgramTuner", trial_id: str) -> None:
        super().__init__()
        self.tuner = tuner
        self.trial_id = trial_id
        self.objective = tuner.oracle.objective
        self.best = -math.inf if self.objective.direction == "max" else math.inf

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = self.objective.get_value(logs or {})
        if self.objective.better_than(value, self.best):
            self.best = value
            self.tuner.save_model(self.trial_id, self.model, step=epoch)


class ProgramTuner(keras_tuner.Tuner):
    """A Keras Tuner whose checkpoints are saved programs and whose trials log to TensorBoard.

    Works with any oracle (`make_oracle`). Each trial checkpoints its best epoch as a
    `SavedProgram` in ``trials/trial_<id>/program/``, writes Keras' TensorBoard scalars to
    ``log_dir/<trial_id>`` and its hyper-parameters there as an HParams summary. Hyperband's
    continued trials start from the saved program of the trial they continue.

    Args:
        epochs: Keras epochs per trial (Hyperband sets its own per trial).
        log_dir: TensorBoard folder, one run per trial.
        backbone_name, weights, seed: how the hypermodel's backbone was built, recorded in
            every saved program so it can be reattached later.
    """

    hypermodel: ReprogrammingHyperModel

    def __init__(self, oracle: keras_tuner.Oracle, hypermodel: ReprogrammingHyperModel, *, epochs: int,
                 log_dir: str | os.PathLike[str], backbone_name: str, weights: str | None, seed: int,
                 **kwargs: Any) -> None:
        super().__init__(oracle, hypermodel, **kwargs)
        self.epochs = epochs
        self.log_dir = Path(log_dir)
        self.backbone_name = backbone_name
        self.weights = weights
        self.seed = seed

    def run_trial(self, trial: keras_tuner.engine.trial.Trial, *args: Any,
                  **kwargs: Any) -> keras.callbacks.History:
        hp = trial.hyperparameters
        model = self.hypermodel.build(hp)
        if "tuner/trial_id" in hp.values:
            previous = self._load_program(hp.values["tuner/trial_id"])
            model.program.weight.assign(previous.weight)
            model.label_map.set_groups(previous.label_groups)
        run_dir = self.log_dir / trial.trial_id
        with tf.summary.create_file_writer(str(run_dir)).as_default():
            hparams_api.hparams(self._searched_values(hp), trial_id=trial.trial_id)
        callbacks = [
            *kwargs.pop("callbacks", []),
            keras.callbacks.TensorBoard(str(run_dir), update_freq=TENSORBOARD_UPDATE_STEPS, write_graph=False),
            SaveBestProgram(self, trial.trial_id),
        ]
        return self.hypermodel.fit(hp, model, *args, epochs=hp.values.get("tuner/epochs", self.epochs),
                                   initial_epoch=hp.values.get("tuner/initial_epoch", 0),
                                   callbacks=callbacks, **kwargs)

    def save_model(self, trial_id: str, model: ReprogrammedModel, step: int = 0) -> None:
        """Saves the trial's program (``W`` and settings), not the backbone's weights."""
        task = self.hypermodel.task
        trial = self.oracle.get_trial(trial_id)
        SavedProgram.from_model(
            model, backbone_name=self.backbone_name, weights=self.weights, seed=self.seed, task_name=task.name,
            class_names=list(task.class_names), label_map_spec=trial.hyperparameters.get("label_map"),
            metrics={"trial_id": trial_id, "epoch": step},
        ).save(self.program_dir(trial_id))

    def load_model(self, trial: keras_tuner.engine.trial.Trial) -> ReprogrammedModel:
        """The trial's best program on the shared backbone."""
        model = self._load_program(trial.trial_id).build_model(self.hypermodel.backbone)
        model.compile()
        return model

    def program_dir(self, trial_id: str) -> Path:
        return Path(self.get_trial_dir(trial_id)) / "program"

    def _load_program(self, trial_id: str) -> SavedProgram:
        return SavedProgram.load(self.program_dir(trial_id))

    def _searched_values(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """The trial's values of the space's parameters (not Hyperband's bookkeeping)."""
        return {p.name: hp.values[p.name] for p in self.hypermodel.space.parameters}


def make_oracle(kind: str, objective: str, max_trials: int, *, epochs: int, seed: int = 0) -> keras_tuner.Oracle:
    """Keras Tuner's random, Hyperband or Bayesian oracle; ``epochs`` is Hyperband's longest trial."""
    if kind == "random":
        return keras_tuner.oracles.RandomSearchOracle(objective, max_trials=max_trials, seed=seed)
    if kind == "bayesian":
        try:
            return keras_tuner.oracles.BayesianOptimizationOracle(objective, max_trials=max_trials, seed=seed)
        except ImportError as error:
            raise ValueError(f"--tuner bayesian needs scikit-learn and scipy: pip install 'keras-tuner[bayesian]' "
                             f"({error})") from None
    if kind == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(objective, max_epochs=epochs, factor=HYPERBAND_FACTOR,
                                                     seed=seed)
        oracle.max_trials = max_trials  # Hyperband has no such argument; the base oracle honours it
        return oracle
    raise ValueError(f"unknown tuner {kind!r}; use one of {', '.join(TUNERS)}")


def _metric_location(objective: str) -> tuple[str, str]:
    """Where Keras' TensorBoard callback writes a metric: (run subfolder, tag)."""
    if objective.startswith("val_"):
        return "validation", "epoch_" + objective[len("val_"):]
    return "train", "epoch_" + objective


def write_hparams_config(log_dir: str | os.PathLike[str], space: SearchSpace, objective: str) -> None:
    """Writes the HParams dashboard's experiment: the space's domains and the objective metric."""
    group, tag = _metric_location(objective)
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hparams_api.hparams_config(
            hparams=[p.hparams_domain() for p in space.parameters],
            metrics=[hparams_api.Metric(tag, group=group, display_name=objective)])


def leaderboard_rows(oracle: keras_tuner.Oracle, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial, in trial order: id, status, objective, best epoch and hyper-parameters."""
    objective = oracle.objective.name
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        done = trial.status == "COMPLETED" and trial.score is not None
        row = {"trial_id": trial_id, "status": trial.status, objective: trial.score if done else "",
               "best_epoch": trial.best_step if done else ""}
        row.update({p.name: trial.hyperparameters.values.get(p.name, "") for p in space.parameters})
        row.update({k: v for k, v in trial.hyperparameters.values.items() if k.startswith("tuner/")})
        rows.append(row)
    return rows


def write_leaderboard(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def train_command_for(values: dict[str, Any], task: str, backbone: str, weights: str | None) -> str:
    """The `arnn train` command that retrains a program with these hyper-parameters."""
    parts = ["arnn train", f"--task {task}", f"--backbone {backbone}", f"--weights {weights or 'none'}",
             f"--lr {values['learning_rate']:.6g}", f"--l2 {values['l2']:.6g}", f"--label-map {values['label_map']}",
             f"--batch-size {values['batch_size']}"]
    for name, flag in (("image_size", "--image-size"), ("border_width", "--border-width"),
                       ("linf_bound", "--linf-bound")):
        if values[name]:
            parts.append(f"{flag} {values[name]}")
    return " ".join(parts)


def _check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Records the search's settings, or refuses to resume a search made with other settings."""
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(key for key in set(old) | set(settings) if old.get(key) != settings.get(key))
        if changed:
            raise ValueError(f"{path.parent} holds a search with other settings ({', '.join(changed)} differ); "
                             "rerun with the same settings to resume it, or use another --out")
        return
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(json.dumps(settings, indent=2) + "\n")
    os.replace(f.name, path)


def is_distributed_worker() -> bool:
    """Whether Keras Tuner's environment makes this process a worker of a distributed search."""
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", "")



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
    space = SearchSpace.load(args.space).fit_to(get_backbone_spec(args.backbone).input_size, task.num_classes)
    if args.epochs is not None:
        epochs, per_epoch = args.epochs, None
    else:
        steps = args.steps or DEFAULT_TRIAL_STEPS
        epochs = HYPERBAND_ROUNDS if args.tuner == "hyperband" else 1
        per_epoch = max(1, math.ceil(steps / epochs))
    _check_settings(out / "search.json", {
        "task": args.task, "backbone": args.backbone, "weights": args.weights, "tuner": args.tuner,
        "steps": args.steps, "epochs": args.epochs, "objective": args.objective, "val_size": val_size,
        "seed": args.seed, "space": space.to_dict()})
    backbone = build_backbone(args.backbone, args.weights, seed=args.seed)
    hypermodel = ReprogrammingHyperModel(backbone, holdout_split(task, val_size, args.seed), space,
                                         steps_per_epoch=per_epoch, seed=args.seed)
    tuner = ProgramTuner(make_oracle(args.tuner, args.objective, args.max_trials, epochs=epochs, seed=args.seed),
                         hypermodel, epochs=epochs, log_dir=out / "logs", backbone_name=args.backbone,
                         weights=args.weights, seed=args.seed, directory=str(out), project_name=PROJECT_NAME)
    is_worker = is_distributed_worker()
    if not is_worker and not any((out / "logs").glob("events.out.tfevents.*")):
        write_hparams_config(out / "logs", space, args.objective)
    tuner.search(verbose=2)
    if is_worker:
        return {}
    return _write_results(tuner, task, space, out, args)


def _write_results(tuner: ProgramTuner, task: Task, space: SearchSpace, out: Path,
                   args: argparse.Namespace) -> dict[str, Any]:
    """Leaderboard, best hyper-parameters and the best program, evaluated on the real test split."""
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
        "trial_id": trial.trial_id, "objective": oracle.objective.name, "direction": oracle.objective.direction,
        "value": trial.score, "best_epoch": trial.best_step, "hyperparameters": values,
        "test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_examples": task.num_examples("test"),
        "completed_trials": sum(row["status"] == "COMPLETED" for row in rows), "trials": len(rows),
        "train_command": train_command_for(values, args.task, args.backbone, args.weights),
    }
    saved = SavedProgram.load(tuner.program_dir(trial.trial_id))
    saved.metrics = {"task": task.name, "backbone": args.backbone, **summary}
    saved.save(out / "best_program")
    (out / "best_hparams.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"best trial {trial.trial_id}: {oracle.objective.name} {trial.score:.4f}, test accuracy "
          f"{test['accuracy']:.4f}; wrote {out / 'best_hparams.json'}, {out / 'leaderboard.csv'} and "
          f"{out / 'best_program'}")
    return summary
