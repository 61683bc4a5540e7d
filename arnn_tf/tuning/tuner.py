"""`ProgramTuner`: Keras Tuner with saved programs as trial checkpoints, and its oracles.

Keras Tuner's own checkpoints hold every weight of the model, the frozen backbone included,
once per trial; a saved program (``W`` and its settings) is a few hundred kilobytes and is
all a trial learns.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import keras
import keras_tuner

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import Recipe
from arnn_tf.runs import saved_program
from arnn_tf.settings import TUNERS
from arnn_tf.tuning.dashboard import write_trial_hparams
from arnn_tf.tuning.hypermodel import ReprogrammingHyperModel

HYPERBAND_FACTOR = 3
TENSORBOARD_UPDATE_STEPS = 10


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
        """Saves the program when this epoch's objective beats the trial's best so far."""
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

    Every saved program holds its trial's recipe, so ``arnn train --recipe`` on it retrains
    that trial from scratch.

    Args:
        epochs: Keras epochs per trial (Hyperband sets its own per trial).
        log_dir: TensorBoard folder, one run per trial.
    """

    hypermodel: ReprogrammingHyperModel

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        hypermodel: ReprogrammingHyperModel,
        *,
        epochs: int,
        log_dir: str | os.PathLike[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(oracle, hypermodel, **kwargs)
        self.epochs = epochs
        self.log_dir = Path(log_dir)

    def run_trial(
        self, trial: keras_tuner.engine.trial.Trial, *args: Any, **kwargs: Any
    ) -> keras.callbacks.History:
        """Trains one trial (continuing Hyperband's earlier one), logging it to TensorBoard."""
        hp = trial.hyperparameters
        model = self.hypermodel.build(hp)
        if "tuner/trial_id" in hp.values:
            previous = self._load_program(hp.values["tuner/trial_id"])
            previous.warm_start(model, relabel=True)  # W, and a learned map's parameters
            for label_map, part in zip(model.label_maps, previous.parts):
                if part.learned_map is None:  # a computed map as it was
                    label_map.set_groups(part.label_groups)
        run_dir = self.log_dir / trial.trial_id
        write_trial_hparams(run_dir, self._searched_values(hp), trial.trial_id)
        callbacks = [
            *kwargs.pop("callbacks", []),
            keras.callbacks.TensorBoard(
                str(run_dir), update_freq=TENSORBOARD_UPDATE_STEPS, write_graph=False
            ),
            SaveBestProgram(self, trial.trial_id),
        ]
        return self.hypermodel.fit(
            hp,
            model,
            *args,
            epochs=hp.values.get("tuner/epochs", self.epochs),
            initial_epoch=hp.values.get("tuner/initial_epoch", 0),
            callbacks=callbacks,
            **kwargs,
        )

    def save_model(self, trial_id: str, model: ReprogrammedModel, step: int = 0) -> None:
        """Saves the trial's program (``W`` and settings), not the backbone's weights."""
        task = self.hypermodel.task
        recipe = self.trial_recipe(self.oracle.get_trial(trial_id))
        metrics = {"trial_id": trial_id, "epoch": step}
        saved_program(model, recipe, task, metrics).save(self.program_dir(trial_id))

    def trial_recipe(self, trial: keras_tuner.engine.trial.Trial) -> Recipe:
        """The recipe ``trial`` trains."""
        return self.hypermodel.recipe_for(trial.hyperparameters.values)

    def load_model(self, trial: keras_tuner.engine.trial.Trial) -> ReprogrammedModel:
        """The trial's best program on the shared backbone."""
        model = self._load_program(trial.trial_id).build_model(self.hypermodel.backbone)
        model.compile()
        return model

    def program_dir(self, trial_id: str) -> Path:
        """Where the trial's best program is saved."""
        return Path(self.get_trial_dir(trial_id)) / "program"

    def _load_program(self, trial_id: str) -> SavedProgram:
        """The trial's best program, as `save_model` left it."""
        return SavedProgram.load(self.program_dir(trial_id))

    def _searched_values(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """The trial's values of the space's parameters (not Hyperband's bookkeeping)."""
        return {p.name: hp.values[p.name] for p in self.hypermodel.space.parameters}


def make_oracle(
    kind: str, objective: str, max_trials: int, *, epochs: int, seed: int = 0
) -> keras_tuner.Oracle:
    """Keras Tuner's random, Hyperband or Bayesian oracle; ``epochs`` is Hyperband's longest
    trial."""
    if kind == "random":
        return keras_tuner.oracles.RandomSearchOracle(objective, max_trials=max_trials, seed=seed)
    if kind == "bayesian":
        try:
            return keras_tuner.oracles.BayesianOptimizationOracle(
                objective, max_trials=max_trials, seed=seed
            )
        except ImportError as error:
            raise ValueError(
                "the Bayesian tuner needs scikit-learn and scipy: pip install "
                f"'keras-tuner[bayesian]' ({error})"
            ) from None
    if kind == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(
            objective, max_epochs=epochs, factor=HYPERBAND_FACTOR, seed=seed
        )
        oracle.max_trials = max_trials  # Hyperband has no such argument; the base oracle honours it
        return oracle
    raise ValueError(f"unknown tuner {kind!r}; use one of {', '.join(TUNERS)}")
