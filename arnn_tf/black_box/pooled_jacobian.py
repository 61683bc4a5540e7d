"""`PooledJacobian`: W's gradient from one Jacobian of the logits shared by all images.

A zeroth-order estimate of the batch loss's gradient reads each perturbed answer through
one number, its loss's finite difference, and the batch's gradients differ mostly through the
images' labels: their loss gradients are nearly unrelated, so estimates from different steps
do not add up. But the answers carry every logit: each perturbed frame gives ``J_b u``, the
change of all the backbone's logits along its direction ``u``. Where the images share much
of their Jacobian ``J_b`` in W (the program is the same border around each image), the
changes of every image and every step estimate one Jacobian ``J`` (in the directions'
coordinates, ``classes x d``), kept as a moving average over about ``memory`` steps; W's
gradient is then ``J^T dL/dz``, with ``dL/dz``, the batch's mean loss gradient in the logits,
exact from the answers through the local map. Each step's estimate is then read through the
Jacobian of some thousands of directions instead of its own few hundred, at no extra query;
it is biased where images' Jacobians differ (the measurements are in `EXPERIMENTS.md`).
Plain numpy and the estimator's `keras.ops`: any Keras backend.
"""

from __future__ import annotations

import numpy as np

from arnn_tf.black_box.estimator import ZerothOrderEstimator


def each_images_coefficients(coefficients: np.ndarray, images: int) -> np.ndarray:
    """Directions' coefficients for each image, ``[q, images, dimension]``: as they are when
    drawn for each image, else each direction's repeated for every image."""
    if coefficients.ndim == 3:
        return coefficients
    shape = (len(coefficients), images, coefficients.shape[-1])
    return np.broadcast_to(coefficients[:, None], shape)


class PooledJacobian:
    """A moving average of the logits' Jacobian in the directions' ``dimension`` coordinates,
    over about ``memory`` steps (decay ``1 - 1 / memory``), bias-corrected as Adam's moments
    are."""

    def __init__(self, memory: float, dimension: int) -> None:
        if not (np.isfinite(memory) and memory >= 1):
            raise ValueError(f"the pooled Jacobian's memory must be >= 1 step, got {memory!r}")
        self.memory = float(memory)
        self.dimension = int(dimension)
        self.jacobian: np.ndarray | None = None
        self.weight = 0.0

    def update(
        self, changes: np.ndarray, coefficients: np.ndarray, weights: np.ndarray | None = None
    ) -> None:
        """Adds one step's logit changes per unit step, ``[n, classes]``, along ``n``
        directions with these coefficients ``[n, dimension]``, each weighted ``dimension /
        n`` (directions drawn in the whole space) or by its own ``weights`` ``[n]``
        (`arnn_tf.black_box.guided_directions`)."""
        if weights is None:
            weights = np.full(len(changes), self.dimension / len(changes))
        weighted = coefficients * np.asarray(weights, "float64")[:, None]
        step = changes.T.astype("float64") @ weighted
        decay = 1.0 - 1.0 / self.memory
        previous = np.zeros_like(step) if self.jacobian is None else self.jacobian
        self.jacobian = decay * previous + (1.0 - decay) * step
        self.weight = decay * self.weight + (1.0 - decay)

    def estimate(
        self,
        estimator: ZerothOrderEstimator,
        changes: np.ndarray,
        coefficients: np.ndarray,
        logit_gradient: np.ndarray,
        mask: np.ndarray,
    ) -> np.ndarray:
        """W's estimate (program-shaped, clipped as the estimator clips) through the pooled
        Jacobian, after adding the step's logit ``changes`` ``[q, images, classes]`` along the
        directions' ``coefficients`` (as `ZerothOrderEstimator.draw` gives them), for the
        batch loss's gradient in the logits summed over the images ``[classes]``."""
        each = each_images_coefficients(coefficients, changes.shape[1])
        self.update(changes.reshape(-1, changes.shape[-1]), each.reshape(-1, each.shape[-1]))
        return estimator.clipped(estimator.lift(self.gradient(logit_gradient), mask))

    def gradient(self, logit_gradient: np.ndarray) -> np.ndarray:
        """``J^T g`` for ``g`` the loss's gradient in the logits ``[classes]``: the loss's
        gradient in the directions' coordinates ``[dimension]``."""
        if self.jacobian is None:
            raise ValueError("the pooled Jacobian has no steps yet: update it first")
        return (self.jacobian.T @ logit_gradient.astype("float64") / self.weight).astype("float32")

    def state(self) -> dict[str, np.ndarray]:
        """The average and its weight by name, for a checkpoint (nothing before a step)."""
        if self.jacobian is None:
            return {}
        return {"pooled_jacobian": self.jacobian, "pooled_jacobian_weight": np.array(self.weight)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Takes back what `state` gave (nothing if the checkpoint holds none)."""
        if "pooled_jacobian" in state:
            self.jacobian = np.asarray(state["pooled_jacobian"], "float64")
            self.weight = float(state["pooled_jacobian_weight"])
