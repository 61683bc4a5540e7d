"""The optimiser of a program: Adam, with the program weight's own rate, first moment, start
and, where the recipe says, Nesterov SGD steps."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from arnn_tf.models.reprogrammed import ReprogrammedModel
from arnn_tf.recipes import ADAM_BETA_1
from arnn_tf.training.plan import TrainingPlan


def adam(plan: TrainingPlan, model: ReprogrammedModel) -> keras.optimizers.Adam:
    """Adam on the plan's schedule, keeping the recipe's moving average of the weights if it
    has one, and stepping ``model``'s program weight at ``program_lr_scale`` times the rate
    with the first-moment decay ``program_momentum``, from step ``map_warmup_steps`` on (with
    the input encoders' weights)."""
    recipe = plan.recipe
    options = {"use_ema": recipe.ema is not None, "ema_momentum": recipe.ema or 0.99}
    scale, momentum, held_for = plan.program_lr_scale, plan.program_momentum, plan.map_warmup_steps
    nesterov = recipe.program_update == "nesterov"
    if scale == 1 and momentum == ADAM_BETA_1 and not held_for and not nesterov:
        return keras.optimizers.Adam(plan.schedule(), beta_1=ADAM_BETA_1, **options)
    path = model.program.weight.path
    held = [path] + [v.path for encoder in model.encoders for v in encoder.trainable_weights]
    return ScaledRateAdam(
        plan.schedule(),
        {path: scale},
        first_moments={path: momentum},
        start_steps=dict.fromkeys(held, held_for) if held_for else {},
        nesterov=[path] if nesterov else [],
        **options,
    )


@keras.saving.register_keras_serializable(package="arnn_tf")
class ScaledRateAdam(keras.optimizers.Adam):
    """Adam with the learning rate of some variables, named by path, scaled, their first
    moment decaying at its own rate (``first_moments``: path -> beta_1), their steps
    starting later (``start_steps``: path -> the first step that moves them), and some
    stepped by SGD with Nesterov momentum instead (``nesterov``: paths; beta_1 is then the
    momentum, Adam's first-moment slot the velocity, as `keras.optimizers.SGD` steps).

    Adam's step does not depend on the gradient's scale, so a slower W (whose gradient, when
    estimated from queries, is mostly noise) needs a smaller rate, not a smaller gradient;
    a longer first-moment memory averages more of those estimates into each step; and W's
    gradient is steadier once the map it is read through has learned (a later start).
    """

    def __init__(
        self,
        learning_rate: Any,
        rate_scales: dict[str, float],
        first_moments: dict[str, float] | None = None,
        start_steps: dict[str, int] | None = None,
        nesterov: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rate_scales = dict(rate_scales)
        self.first_moments = dict(first_moments or {})
        self.start_steps = dict(start_steps or {})
        self.nesterov = list(nesterov)

    def build(self, variables: Sequence[Any]) -> None:
        super().build(variables)
        self._scales = [self.rate_scales.get(v.path, 1.0) for v in variables]
        self._beta_1s = [self.first_moments.get(v.path, self.beta_1) for v in variables]
        self._starts = [self.start_steps.get(v.path, 0) for v in variables]
        self._nesterov = [v.path in self.nesterov for v in variables]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = self._get_variable_index(variable)
        rate = learning_rate * self._scales[index]
        if self._starts[index]:
            started = keras.ops.greater_equal(self.iterations, self._starts[index])
            rate = rate * keras.ops.cast(started, variable.dtype)
        if self._nesterov[index]:
            self._nesterov_step(gradient, variable, rate, self._beta_1s[index])
            return
        shared_beta_1 = self.beta_1
        self.beta_1 = self._beta_1s[index]  # read by Adam's step (and its bias correction)
        try:
            super().update_step(gradient, variable, rate)
        finally:
            self.beta_1 = shared_beta_1

    def _nesterov_step(self, gradient: Any, variable: Any, rate: Any, momentum: float) -> None:
        """`keras.optimizers.SGD`'s Nesterov step: v <- m v - r g; W <- W + m v - r g."""
        velocity = self._momentums[self._get_variable_index(variable)]
        step = keras.ops.cast(rate, variable.dtype) * keras.ops.cast(gradient, variable.dtype)
        self.assign(velocity, momentum * velocity - step)
        self.assign_add(variable, momentum * velocity - step)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate_scales": self.rate_scales,
            "first_moments": self.first_moments,
            "start_steps": self.start_steps,
            "nesterov": self.nesterov,
        }
