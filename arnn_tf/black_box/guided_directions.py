"""`GuidedDirections`: a share of each step's directions drawn where the logits respond most.

q random directions in all d dimensions of the grid catch about ``sqrt(q / d)`` of the loss
gradient's direction. But a batch's gradient in W, ``sum_b J_b^T dL/dz_b``, lies mostly in the
few directions along which the backbone's logits change most, and those are much the same
from image to image and step to step (the measurements are in `EXPERIMENTS.md`). Every
perturbed answer gives all the logits' change along its direction, so the logits' Jacobian
pooled over the images and recent steps (`PooledJacobian`) finds that subspace at no query: its
top ``rank`` right singular vectors, tracked by one step of subspace iteration a step (the
pooled Jacobian moves slowly; an exact decomposition of a 32 x 32 x 3 grid's Jacobian would
take seconds a step). Each step then draws ``share`` of its directions in that
subspace and the rest in its orthogonal complement (as guided evolution strategies mix a
subspace with the whole space, Maheswaranathan et al., ICML 2019), and weighs each group's
slopes by its own dimension: ``rank / n`` inside, ``(d - rank) / n`` outside, so the estimate
still expects the whole gradient, with far less noise where the gradient mostly is. Unlike
reading the gradient through the pooled Jacobian itself, the estimate uses the step's own
slopes: the pooled Jacobian only chooses where to look. Before its first update every
direction is drawn in the whole space, as without a guide. Plain numpy: any Keras backend.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from arnn_tf.black_box.estimator import ZerothOrderEstimator
from arnn_tf.black_box.pooled_jacobian import PooledJacobian, each_images_coefficients


class GuidedDirections:
    """Draws directions ``share`` in the top-``rank`` subspace of a `PooledJacobian` of the
    logits (in the directions' ``dimension`` coordinates, over about ``memory`` steps) and the
    rest in its complement, and turns their slopes into an estimate and a Jacobian update."""

    def __init__(self, rank: int, share: float, memory: float, dimension: int) -> None:
        if not 1 <= rank < dimension:
            raise ValueError(
                f"a guide's rank must be between 1 and the directions' dimension less one "
                f"({dimension - 1}), got {rank!r}"
            )
        if not 0 < share < 1:
            raise ValueError(f"a guide's share must be strictly between 0 and 1, got {share!r}")
        self.rank = int(rank)
        self.share = float(share)
        self.pooled = PooledJacobian(memory, dimension)
        self.guided = 0
        self.tracked: np.ndarray | None = None

    def next_basis(self) -> np.ndarray | None:
        """The pooled Jacobian's top ``rank`` right singular vectors ``[dimension, rank]`` (an
        orthonormal basis of their span) as the tracking has them after one more iteration
        (five from a seeded start on the first call), or None before the Jacobian's first
        update."""
        jacobian = self.pooled.jacobian
        if jacobian is None:
            return None
        start = self.tracked
        if start is None:
            start = np.random.default_rng(0).standard_normal((self.pooled.dimension, self.rank))
        for _ in range(1 if self.tracked is not None else 5):
            start = np.linalg.qr(jacobian.T @ (jacobian @ start))[0]
        self.tracked = start
        return start

    def state(self) -> dict[str, np.ndarray]:
        """The pooled Jacobian and the tracked basis by name, for a checkpoint."""
        tracked = {} if self.tracked is None else {"guide_basis": self.tracked}
        return {**self.pooled.state(), **tracked}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Takes back what `state` gave."""
        self.pooled.restore(state)
        if "guide_basis" in state:
            self.tracked = np.asarray(state["guide_basis"], "float64")

    def draw(
        self,
        estimator: ZerothOrderEstimator,
        mask: np.ndarray,
        rng: np.random.Generator,
        images: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The step's directions and coefficients, as `ZerothOrderEstimator.draw` gives them:
        the guided ones first (none before the Jacobian's first update), then the rest."""
        basis = self.next_basis()
        q = estimator.directions
        self.guided = 0 if basis is None else min(q - 1, max(1, round(self.share * q)))
        if not self.guided:
            return estimator.draw(mask, rng, images)
        inside = dataclasses.replace(estimator, directions=self.guided)
        outside = dataclasses.replace(estimator, directions=q - self.guided)
        drawn = [
            inside.draw(mask, rng, images, basis=basis),
            outside.draw(mask, rng, images, basis=basis, complement=True),
        ]
        return tuple(np.concatenate(parts) for parts in zip(*drawn))

    def weights(self, shape: tuple[int, ...]) -> np.ndarray:
        """Each slope's weight, ``shape`` ``[q, (images,)]``: its group's dimension over the
        group's slopes (the whole space's, ``d / n``, with no guided directions)."""
        dimension = self.pooled.dimension
        per_direction = int(np.prod(shape[1:]))
        if not self.guided:
            return np.full(shape, dimension / (shape[0] * per_direction))
        rest = shape[0] - self.guided
        inside = np.full((self.guided, *shape[1:]), self.rank / (self.guided * per_direction))
        outside = np.full((rest, *shape[1:]), (dimension - self.rank) / (rest * per_direction))
        return np.concatenate([inside, outside])

    def estimate(
        self,
        estimator: ZerothOrderEstimator,
        losses: np.ndarray,
        changes: np.ndarray,
        coefficients: np.ndarray,
        mask: np.ndarray,
    ) -> np.ndarray:
        """W's estimate (program-shaped, clipped as the estimator clips) from each image's
        ``losses`` at the points ``[points, images]``, after adding the step's logit
        ``changes`` ``[q, images, classes]`` along the directions' ``coefficients`` (``[q,
        (images,) dimension]``, shared by the images without ``per_image``) to the Jacobian."""
        slopes = estimator.slopes(np.asarray(losses, "float64"))
        q, images = slopes.shape
        each = each_images_coefficients(coefficients, images)
        weights = self.weights((q, images))
        self.pooled.update(
            changes.reshape(q * images, -1),
            each.reshape(q * images, -1),
            weights.reshape(-1),
        )
        on_grid = np.tensordot(weights * slopes, each, axes=2)
        return estimator.clipped(estimator.lift(on_grid, mask))
