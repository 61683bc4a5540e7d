"""`BlackBoxTrainer`: trains a program through queries alone (TensorFlow-specific).

Each step sends one query: the frames of the batch under W and under each perturbed W
(`ZerothOrderEstimator.points`), ``batch * points_per_step`` frames. The loss is computed
here from the answers through the model's label map, as white-box training computes it (the
recipe's loss of the task probabilities, plus the model's regulariser ``lambda ||W||^2``).
W's gradient is the zeroth-order estimate of the task loss's plus the regulariser's exact
gradient; a learned label map gets its exact gradient from the answers (a `tf.GradientTape`
over the map and the regulariser only: the logits are constants). A frequency or iterative
label map is computed from answers too: its sample's frames under W are queries, counted and
budgeted like the steps'. The backbone's gradient is never asked for; the model's own
backbone is never called.

The model's Adam optimiser applies both gradients (W's at the plan's ``program_lr_scale``
of the rate, by default a hundredth: Adam steps every entry by about its rate however noisy
the estimate, and the loss is sharply curved in W), so checkpoints, resume, schedules and EMA
work as in white-box training (`arnn_tf.training.trainer.Trainer.fit`). The directions of step s are
drawn from ``(recipe.seed, s)``, so a resumed run draws what the uninterrupted run would.

With the recipe's ``program_update`` "cma", W (a program's code) is not stepped on an estimate:
each step asks for the batch under W and under a CMA-ES generation of candidate codes
(`arnn_tf.black_box.evolution`, ``directions`` of them, first spread by ``beta``), and W becomes
the search's new mean; the search's state is part of each checkpoint.

With a ``stand_in`` (`arnn_tf.black_box.stand_in.StandIn`, a local network, never the served
one), W's gradient is not estimated: it is backpropagated through the stand-in and the map,
while the loss, the map's gradient and the accuracy come from the served answers for the batch
under W, one frame an image a step, to which a fitted stand-in is fitted first.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.black_box.answer_replay import AnswerReplay
from arnn_tf.black_box.defaults import (
    DEFAULT_BETA,
    DEFAULT_DIRECTIONS,
    DEFAULT_GUIDE_MEMORY,
    DEFAULT_GUIDE_SHARE,
    DEFAULT_MAP_REFIT_EPOCHS,
    DEFAULT_ZO_RESOLUTION,
)
from arnn_tf.black_box.estimator import ZerothOrderEstimator, program_frames
from arnn_tf.black_box.evolution import CodeEvolution
from arnn_tf.black_box.guided_directions import GuidedDirections
from arnn_tf.black_box.pooled_jacobian import PooledJacobian
from arnn_tf.black_box.queries import QueryFunction, checked_answer
from arnn_tf.black_box.stand_in import StandIn
from arnn_tf.label_maps.frequency import FrequencyLabelMapping
from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.training.callback_loop import run_callback_loop
from arnn_tf.training.losses import per_example_loss, task_loss
from arnn_tf.training.optimizers import adam
from arnn_tf.training.plan import TrainingPlan
from arnn_tf.training.trainer import Trainer


class BlackBoxTrainer(Trainer):
    """Trains with zeroth-order estimates of W's gradient from ``query``'s answers.

    ``directions``, ``beta``, ``antithetic``, ``zo_resolution``, ``zo_clip`` (its ``clip``) and
    ``per_image_directions`` (its ``per_image``) are the `ZerothOrderEstimator`'s.
    ``max_queries`` bounds the frames this trainer sends: it stops before a step that would go
    past it. ``queries`` counts the frames sent by this
    trainer object, that is, in this process: a resumed run starts again from 0 (its earlier
    steps cost ``batch * points_per_step`` frames each), and ``max_queries`` bounds this
    process's queries (like a time limit, a rerun continues with a fresh budget);
    ``stopped_by_queries`` says whether it stopped training short. During the recipe's
    ``map_warmup_steps`` W is held and a step asks for one frame an image, as every step does
    with a ``stand_in`` (a local network that gives W's gradient); with ``map_refit_epochs``
    the warmup's answers are kept and the learned map refitted on them for that many passes
    before W's first estimate (`AnswerReplay`: no queries). With ``jacobian_memory`` each
    estimate is read through the logits' Jacobian pooled over the images and about that many
    steps (`PooledJacobian`: no extra queries); with ``guide_rank`` that Jacobian (over
    ``jacobian_memory`` steps, 50 if None) only guides the directions instead: ``guide_share``
    of them drawn in its top ``guide_rank`` subspace (`GuidedDirections`). The callbacks' logs
    and the history carry "loss", "accuracy" (running means over the epoch, as `model.fit`
    reports them) and "queries".
    """

    def __init__(
        self,
        query: QueryFunction,
        *,
        directions: int = DEFAULT_DIRECTIONS,
        beta: float = DEFAULT_BETA,
        antithetic: bool = False,
        per_image_directions: bool = False,
        zo_resolution: int | None = DEFAULT_ZO_RESOLUTION,
        zo_clip: float | None = None,
        max_queries: int | None = None,
        stand_in: StandIn | None = None,
        map_refit_epochs: int = DEFAULT_MAP_REFIT_EPOCHS,
        jacobian_memory: float | None = None,
        guide_rank: int | None = None,
        guide_share: float = DEFAULT_GUIDE_SHARE,
    ) -> None:
        if map_refit_epochs < 0:
            raise ValueError(f"map_refit_epochs must be >= 0, got {map_refit_epochs}")
        if max_queries is not None and max_queries < 1:
            raise ValueError(f"max_queries must be a positive number of frames, got {max_queries}")
        self.query = query
        self.estimator = ZerothOrderEstimator(
            directions, beta, antithetic, zo_resolution, zo_clip, per_image_directions
        )
        self.max_queries = max_queries
        self.queries = 0
        self.stopped_by_queries = False
        self.map_warmup_steps = 0
        self.evolution: CodeEvolution | None = None
        self.stand_in = stand_in
        self.map_refit_epochs = map_refit_epochs
        self.replay = AnswerReplay()
        self.learning_rate = 0.0
        self.jacobian_memory = jacobian_memory
        self.pooled: PooledJacobian | None = None
        self.guide_rank = guide_rank
        self.guide_share = guide_share
        self.guide: GuidedDirections | None = None

    def compile(
        self,
        model: ReprogrammedModel,
        plan: TrainingPlan,
    ) -> None:
        if any(encoder.trainable_weights for encoder in model.encoders):
            raise ValueError(
                "black-box training estimates W's gradient only: an input encoder that "
                "learns, such as a text task's patch table, would need the backbone's own "
                "gradients; train this task white-box (trainer 'white_box')"
            )
        self.estimator.check_fits(_direction_mask(model.program).shape)
        if self.jacobian_memory is not None or self.guide_rank is not None:
            self._compile_pooled(model)
        if self.stand_in is not None:
            self.stand_in.check(model)
        self.map_warmup_steps = plan.map_warmup_steps
        self.learning_rate = plan.recipe.learning_rate
        if plan.recipe.program_update == "cma":
            self._compile_evolution(model, plan)
        model.compile(optimizer=adam(plan, model), loss=task_loss(plan.recipe))

    def _compile_evolution(self, model: ReprogrammedModel, plan: TrainingPlan) -> None:
        """Sets up CMA-ES over the program's code."""
        dimension = model.program.code_dimension
        if dimension is None:
            raise ValueError(
                "CMA-ES searches a program's code: program_update 'cma' needs a "
                "code_dimension (W written as a code of a few hundred numbers)"
            )
        self.evolution = CodeEvolution(
            dimension, self.estimator.directions, self.estimator.beta, plan.recipe.seed
        )

    def _compile_pooled(self, model: ReprogrammedModel) -> None:
        """Sets up the pooled Jacobian, or the guide around one, refusing directions in too
        many dimensions for it."""
        on_the_frame = model.program.code_dimension is None and self.estimator.zo_resolution is None
        if self.stand_in is not None or on_the_frame:
            raise ValueError(
                "a pooled Jacobian averages estimated Jacobians: it needs directions on a "
                "grid (a zo_resolution) or in a program's code, and no stand-in"
            )
        dimension = self.estimator.dimension(_direction_mask(model.program))
        if self.guide_rank is None:
            self.pooled = PooledJacobian(self.jacobian_memory, dimension)
            return
        memory = DEFAULT_GUIDE_MEMORY if self.jacobian_memory is None else self.jacobian_memory
        self.guide = GuidedDirections(self.guide_rank, self.guide_share, memory, dimension)

    def checkpoint_arrays(self) -> dict[str, Any]:
        """A CMA-ES search's state, a fitted stand-in's, a pooled Jacobian (a guide's with its
        basis), and the answers kept for the map's refit (none for an estimate's plain
        steps)."""
        arrays = {} if self.evolution is None else self.evolution.state()
        arrays = arrays if self.stand_in is None else {**arrays, **self.stand_in.state()}
        for jacobian in (self.pooled, self.guide):
            arrays = arrays if jacobian is None else {**arrays, **jacobian.state()}
        return {**arrays, **self.replay.state()}

    def restore_arrays(self, arrays: dict[str, Any]) -> None:
        """A CMA-ES search's state, which the next step replays (`_candidates`), or a fitted
        stand-in's, a pooled Jacobian, or the answers kept for the map's refit."""
        self.replay.restore(arrays)
        if self.pooled is not None:
            self.pooled.restore(arrays)
        if self.guide is not None:
            self.guide.restore(arrays)
        if self.evolution is not None:
            self.evolution.restore(arrays)
        if self.stand_in is not None:
            self.stand_in.restore(arrays)

    def run(
        self,
        model: ReprogrammedModel,
        data: tf.data.Dataset,
        steps: int,
        steps_per_epoch: int,
        callbacks: Sequence[keras.callbacks.Callback],
        plan: TrainingPlan,
    ) -> dict[str, list[float]]:
        recipe = plan.recipe
        mapping = next((c for c in callbacks if isinstance(c, FrequencyLabelMapping)), None)
        self._check_budget(model, recipe.batch_size, mapping)
        loss, accuracy = keras.metrics.Mean(), keras.metrics.SparseCategoricalAccuracy()
        batches = iter(data.take(steps))
        done = 0

        def one_step() -> dict[str, float]:
            nonlocal done
            inputs, labels = next(batches)
            step_loss, probabilities = self._step(model, inputs, labels, recipe.seed)
            loss.update_state(step_loss)
            accuracy.update_state(labels, probabilities)
            done += 1
            if not self._affordable(model, recipe.batch_size, mapping):
                model.stop_training = self.stopped_by_queries = done < steps
            return {
                "loss": float(loss.result()),
                "accuracy": float(accuracy.result()),
                "queries": self.queries,
            }

        return run_callback_loop(
            model, steps, steps_per_epoch, callbacks, one_step, running=(loss, accuracy)
        )

    def _step(
        self, model: ReprogrammedModel, inputs: Any, labels: tf.Tensor, seed: int
    ) -> tuple[float, tf.Tensor]:
        """One query and one update; returns the loss at W and the task probabilities.

        ``inputs`` are a one-part model's batch, or each part's rows of one batch. Everything
        that can fail (the query, the checks of its answer) comes before the update, so a
        failed step leaves W and the optimiser as they were.
        """
        program = model.program
        if self._estimates(model) and len(self.replay):
            self.replay.refit(model, self.map_refit_epochs, self.learning_rate)
        mask = _direction_mask(program)
        points, directions, coefficients = self._points(model, mask, seed, len(labels))
        parts = _parts(model, inputs)
        sizes = [len(x) for x in parts]
        logits = self._ask_parts(model, parts, points)
        batch = len(labels)
        losses = _task_losses(model, labels, logits[batch:], len(points) - 1, sizes)
        if self.map_refit_epochs and program.trainable and not self._estimates(model):
            self.replay.add(logits[:batch], labels, sizes)
        center = tf.constant(logits[:batch])
        with tf.GradientTape() as tape:
            tape.watch(center)
            probabilities = model.answers(center, sizes)
            per_example = per_example_loss(model, labels, probabilities)
            task = keras.ops.mean(per_example)
            total = task + sum(model.losses)
        *gradients, logit_gradient = tape.gradient(total, [*model.trainable_variables, center])
        if self.evolution is not None and len(points) > 1:  # a generation was asked
            return self._evolve(
                model, points[1:], losses.mean(axis=1), gradients, float(total), probabilities
            )
        estimate = None
        if directions is not None:
            everywhere = np.concatenate([keras.ops.convert_to_numpy(per_example)[None], losses])
            estimate = self._direction_estimate(
                logits, everywhere, logit_gradient, directions, coefficients, mask
            )
        elif self.stand_in is not None and self._estimates(model):
            self.stand_in.fit(model.adversarial_inputs(inputs), logits[:batch])
            estimate = self.stand_in.gradient(model, inputs, sizes, labels)
        if estimate is not None:
            gradients = [
                _plus(g, estimate if v is program.weight else None, v)
                for g, v in zip(gradients, model.trainable_variables)
            ]
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return float(total), probabilities

    def _points(
        self, model: ReprogrammedModel, mask: np.ndarray, seed: int, batch: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The step's program weights ``[W, ...]`` (W alone while it is held or has a stand-in,
        then a CMA-ES generation or W and each perturbed W), and the directions and their
        coefficients where they are perturbations."""
        weight = keras.ops.convert_to_numpy(model.program.weight.value)
        if self._estimates(model) and self.evolution is not None:
            return np.concatenate([weight[None], self._candidates(model, weight)]), None, None
        if not self._estimates(model) or self.stand_in is not None:
            return weight[None], None, None
        rng = np.random.default_rng((seed, int(model.optimizer.iterations)))
        if self.guide is None:
            directions, coefficients = self.estimator.draw(mask, rng, batch)
        else:
            directions, coefficients = self.guide.draw(self.estimator, mask, rng, batch)
        return self.estimator.points(weight, directions), directions, coefficients

    def _direction_estimate(
        self,
        logits: np.ndarray,
        losses: np.ndarray,
        logit_gradient: Any,
        directions: np.ndarray,
        coefficients: np.ndarray,
        mask: np.ndarray,
    ) -> np.ndarray:
        """W's estimate from the step's answers along its directions (each image's ``losses``
        at every point): read through the pooled Jacobian, guided, or plain."""
        if self.pooled is None and self.guide is None:
            return self.estimator.gradient(losses, directions, mask)
        answers = logits.reshape(self.estimator.points_per_step, losses.shape[1], -1)
        changes = self.estimator.slopes(answers)  # each image's logits' [q, batch, classes]
        if self.guide is not None:
            return self.guide.estimate(self.estimator, losses, changes, coefficients, mask)
        summed = keras.ops.convert_to_numpy(logit_gradient).sum(axis=0)
        return self.pooled.estimate(self.estimator, changes, coefficients, summed, mask)

    def _candidates(self, model: ReprogrammedModel, weight: np.ndarray) -> np.ndarray:
        """The next CMA-ES generation's codes, the search begun at ``weight`` (W as the first
        estimating step finds it) or rebuilt from its saved state on a resumed run."""
        if not self.evolution.started:
            generation = int(model.optimizer.iterations) - self.map_warmup_steps
            self.evolution.resume(weight, generation)
        return self.evolution.candidates()

    def _evolve(
        self,
        model: ReprogrammedModel,
        candidates: np.ndarray,
        task_losses: np.ndarray,
        gradients: list[Any],
        total: float,
        probabilities: tf.Tensor,
    ) -> tuple[float, tf.Tensor]:
        """Tells the search each candidate's loss (its task loss and regulariser), steps the
        map on its exact gradient, and makes W the search's new mean."""
        program = model.program
        mean = self.evolution.tell(task_losses + program.l2 * np.sum(candidates**2, axis=1))
        gradients = [_plus(g, None, v) for g, v in zip(gradients, model.trainable_variables)]
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        program.weight.assign(mean)
        return total, probabilities

    def _ask_parts(
        self, model: ReprogrammedModel, parts: list[Any], points: np.ndarray
    ) -> np.ndarray:
        """The logits ``[len(points) * batch, classes]`` of the batch (each part's rows, in
        part order) under each program weight in ``points`` (``[k, *weight_shape]``, or
        ``[k, batch, *weight_shape]``: one for each row), point by point, from one query,
        checked."""
        frame = (model.program.frame_size, model.program.frame_size, 3)
        per_row = points.ndim > len(model.program.weight_shape) + 1
        starts = np.cumsum([len(x) for x in parts])[:-1]
        rows = np.split(points, starts, axis=1) if per_row else [points] * len(parts)
        frames = [
            _frames(model, x, part_points, i).reshape(len(points), len(x), *frame)
            for i, (x, part_points) in enumerate(zip(parts, rows))
        ]
        return self._query_frames(model, np.concatenate(frames, axis=1).reshape(-1, *frame))

    def _query_frames(self, model: ReprogrammedModel, frames: np.ndarray) -> np.ndarray:
        """The query function's logits for ``frames``, counted and checked."""
        answer = self.query(frames)
        self.queries += len(frames)
        return checked_answer(answer, len(frames), model.label_maps[0].num_source_classes)

    def _estimates(self, model: ReprogrammedModel) -> bool:
        """Whether the next step estimates W's gradient: W trains and the map's warmup (W
        held, one frame an image) is over."""
        return model.program.trainable and int(model.optimizer.iterations) >= self.map_warmup_steps

    def label_map_source(self, model: ReprogrammedModel) -> Callable[[Any, int], Any]:
        """The logits of task images under W, asked of the query function (and counted)."""

        def ask(inputs: Any, part: int) -> np.ndarray:
            weight = keras.ops.convert_to_numpy(model.program.weight.value)
            return self._query_frames(model, _frames(model, inputs, weight[None], part))

        return ask

    def _next_cost(
        self, model: ReprogrammedModel, batch_size: int, mapping: FrequencyLabelMapping | None
    ) -> tuple[int, int]:
        """The frames the next step queries, and those of the label map's remap before it."""
        points = (self.evolution or self.estimator).points_per_step
        points = 1 if self.stand_in is not None else points
        per_step = batch_size * (points if self._estimates(model) else 1)
        return per_step, 0 if mapping is None else mapping.images_before_next_step()

    def _affordable(
        self, model: ReprogrammedModel, batch_size: int, mapping: FrequencyLabelMapping | None
    ) -> bool:
        """Whether one more step (and a remap before it) stays within ``max_queries``."""
        return (
            self.max_queries is None
            or self.queries + sum(self._next_cost(model, batch_size, mapping)) <= self.max_queries
        )

    def _check_budget(
        self, model: ReprogrammedModel, batch_size: int, mapping: FrequencyLabelMapping | None
    ) -> None:
        """Refuses a budget too small for even one step, which would train nothing."""
        if not self._affordable(model, batch_size, mapping):
            per_step, remap = self._next_cost(model, batch_size, mapping)
            raise ValueError(
                f"max_queries {self.max_queries} (with {self.queries} frames already sent) leaves "
                f"too few for one step of {per_step} frames (batch {batch_size} x "
                f"{per_step // batch_size} program weights)"
                + (f" after the label map's {remap} sample frames" if remap else "")
                + "; raise max_queries"
            )


def _direction_mask(program: Any) -> np.ndarray:
    """Where directions may point: W's entries that some part's program uses, or every entry
    of a program's code."""
    if program.code_dimension is not None:
        return np.ones(program.weight_shape, "float32")
    return np.maximum.reduce(program.masks)


def _frames(model: ReprogrammedModel, inputs: Any, points: np.ndarray, part: int) -> np.ndarray:
    """Part ``part``'s frames of ``inputs`` under each program weight in ``points``."""
    return program_frames(model.program, model.encoders[part](inputs), points, part=part)


def _parts(model: ReprogrammedModel, inputs: Any) -> list[Any]:
    """A batch's inputs as a list of each part's rows (a one-part model's: one)."""
    return [inputs] if len(model.encoders) == 1 else list(inputs)


def _task_losses(
    model: ReprogrammedModel, labels: tf.Tensor, logits: np.ndarray, points: int, sizes: list[int]
) -> np.ndarray:
    """The task loss of each image of the batch (``sizes``: each part's rows) under each of
    ``points`` perturbed programs, ``[points, batch]``, from their logits ``[points * batch,
    classes]``, point by point (the loss's finite differences need no tape)."""
    if points == 0:
        return np.zeros((0, len(labels)))
    blocks = np.split(logits, points)
    probabilities = keras.ops.concatenate([model.answers(block, sizes) for block in blocks])
    per_example = per_example_loss(model, keras.ops.tile(labels, (points,)), probabilities)
    return keras.ops.convert_to_numpy(keras.ops.reshape(per_example, (points, -1)))


def _plus(gradient: Any, estimate: np.ndarray | None, variable: Any) -> Any:
    """``gradient + estimate``, either of them possibly absent (None: zero)."""
    total = keras.ops.zeros_like(variable) if gradient is None else gradient
    return total if estimate is None else total + estimate
