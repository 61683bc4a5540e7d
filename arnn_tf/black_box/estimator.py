"""Zeroth-order estimates of the program weight's gradient, from losses at perturbed weights.

BAR (Tsai et al., ICML 2020) estimates the gradient of a loss ``L`` at ``W`` from ``q``
random unit directions ``U_j``:

    g = (d / q) * sum_j [L(W + beta * U_j) - L(W)] / beta * U_j

where ``d`` is the dimension the directions are drawn from: ``E[d (g.U) U]`` is the gradient
projected onto that space. With ``antithetic`` pairs, ``[L(W + beta U_j) - L(W - beta U_j)] /
(2 beta)`` replaces the forward difference: its error is of order ``beta^2``, not ``beta``,
at the cost of ``q`` more points. With ``per_image`` each image of the batch takes its own
``q`` directions, for the same number of frames: ``q x batch`` directional slopes of the
images' own losses instead of ``q`` of the batch's mean, averaged into one estimate (the
batch loss's gradient is the mean of the images'). Its variance is that of the shared
directions times ``mean |g_b|^2 / (batch |g|^2)``: never larger, ``1 / batch`` as small where
the images' gradients agree. With ``clip`` the estimate's norm is bounded (as ZIP, ICLR
2025, clips it: a rare large finite difference cannot throw W far). A full-resolution program
has ``d`` in the hundreds of thousands, so ``q`` directions capture about ``sqrt(q / d)``
of the gradient's direction; with ``zo_resolution`` c, directions are drawn from c x c x 3
grids upsampled (bilinearly) to the frame: ``d = 3 c^2`` and the estimate is that of the
gradient of a smooth program, while ``W`` itself keeps the frame's resolution. Directions
are masked to the entries the program uses (``M`` in ``tanh(W * M)``). A program written as a
code (`arnn_tf.layers.frame_program`) takes its directions in the code's d numbers instead.

The losses come from elsewhere (`arnn_tf.black_box.trainer` queries the model for all points
in one call). Written with numpy and `keras.ops` only, so it works on any Keras backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from arnn_tf.black_box.defaults import DEFAULT_BETA, DEFAULT_DIRECTIONS, DEFAULT_ZO_RESOLUTION


@dataclasses.dataclass(frozen=True)
class ZerothOrderEstimator:
    """How W's gradient is estimated: ``directions`` (q), ``beta`` (the step along each),
    ``antithetic`` pairs, the ``zo_resolution`` of the directions (None: the frame's),
    ``clip``, a bound on the estimate's norm (None: none), and ``per_image``: directions
    drawn for each image of the batch rather than one set for all."""

    directions: int = DEFAULT_DIRECTIONS
    beta: float = DEFAULT_BETA
    antithetic: bool = False
    zo_resolution: int | None = DEFAULT_ZO_RESOLUTION
    clip: float | None = None
    per_image: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.directions, bool) or self.directions < 1:
            raise ValueError(f"directions must be a positive integer, got {self.directions!r}")
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"beta must be a number > 0, got {self.beta!r}")
        if self.clip is not None and not (np.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"clip must be a number > 0 or None, got {self.clip!r}")
        if self.zo_resolution is not None and self.zo_resolution < 1:
            raise ValueError(
                f"zo_resolution must be a positive integer or None, got {self.zo_resolution!r}"
            )

    @property
    def points_per_step(self) -> int:
        """Weights whose loss one estimate needs: W itself, then each perturbed W."""
        return 1 + self.directions * (2 if self.antithetic else 1)

    def dimension(self, mask: np.ndarray) -> int:
        """d: the number of free entries of the space the directions are drawn from."""
        if self.zo_resolution is None or mask.ndim == 1:
            return int(np.count_nonzero(mask))
        return self.zo_resolution * self.zo_resolution * mask.shape[-1]

    def check_fits(self, shape: tuple[int, ...]) -> None:
        """Refuses directions finer than a program of ``shape`` ``(height, width, channels)``
        (a program's code, of shape ``(d,)``, takes directions in its own d dimensions)."""
        if len(shape) == 1:
            return
        height, width = shape[:2]
        if self.zo_resolution is not None and self.zo_resolution > min(height, width):
            raise ValueError(
                f"zo_resolution {self.zo_resolution} makes directions finer than the "
                f"{height}x{width} program; use at most {min(height, width)} or None"
            )

    def sample(self, mask: np.ndarray, rng: np.random.Generator, images: int = 1) -> np.ndarray:
        """q random unit directions ``[q, *mask.shape]`` (``[q, images, *mask.shape]`` per
        image), zero where ``mask`` is: over the frame (``mask`` n x n x 3), or over a
        program's code (``mask`` of shape ``(d,)``)."""
        return self.draw(mask, rng, images)[0]

    def draw(
        self,
        mask: np.ndarray,
        rng: np.random.Generator,
        images: int = 1,
        basis: np.ndarray | None = None,
        complement: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`sample`'s directions and each one's coefficients in the space they are drawn from
        (``[q, (images,) 3 c^2]`` on a c x c x 3 grid, ``lift`` maps them back; the directions
        themselves, flattened, for a code or the frame's own resolution). With a ``basis``
        (orthonormal columns ``[dimension, k]`` in those coordinates) the draws lie in its
        span, or with ``complement`` in the span's orthogonal complement."""
        self.check_fits(mask.shape)
        count = self.directions * (images if self.per_image else 1)
        if mask.ndim == 1:
            draws = _gaussian(rng, count, int(np.prod(mask.shape)), basis, complement)
            draws = coarse = draws.reshape(count, *mask.shape)
        else:
            coarse, draws = self._frame_draws(count, mask.shape, rng, basis, complement)
        directions = draws * mask
        axes = tuple(range(1, directions.ndim))
        norms = np.sqrt(np.sum(directions**2, axis=axes, keepdims=True))
        if not np.all(norms > 0):
            raise ValueError("the program has no entries to perturb: its mask is zero everywhere")
        directions = directions / norms
        coefficients = (directions if coarse is draws else coarse / norms).reshape(count, -1)
        leading = (self.directions, images) if self.per_image else (self.directions,)
        return (
            directions.reshape(*leading, *mask.shape),
            coefficients.reshape(*leading, -1),
        )

    def lift(self, coefficients: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The program-shaped vector whose coefficients (as `draw` gives them) these are."""
        if mask.ndim == 1 or self.zo_resolution is None:
            return coefficients.reshape(mask.shape).astype("float32")
        grid = coefficients.reshape(1, self.zo_resolution, self.zo_resolution, mask.shape[-1])
        up = keras.ops.image.resize(grid, mask.shape[:2], interpolation="bilinear")
        return (keras.ops.convert_to_numpy(up)[0] * mask).astype("float32")

    def _frame_draws(
        self,
        count: int,
        shape: tuple[int, ...],
        rng: np.random.Generator,
        basis: np.ndarray | None = None,
        complement: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``count`` Gaussian draws on the ``zo_resolution`` grid (the frame's own if None),
        in or out of ``basis``'s span as `draw` says, and the same upsampled to the frame
        (the same array without a grid)."""
        height, width, channels = shape
        grid = (height, width) if self.zo_resolution is None else (self.zo_resolution,) * 2
        flat = _gaussian(rng, count, grid[0] * grid[1] * channels, basis, complement)
        draws = flat.reshape(count, *grid, channels)
        if self.zo_resolution is None:
            return draws, draws
        up = keras.ops.image.resize(draws, (height, width), interpolation="bilinear")
        return draws, keras.ops.convert_to_numpy(up)

    def points(self, weight: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """``[W, W + beta U_1, ..., W + beta U_q]``, then ``W - beta U_j`` when antithetic;
        per image, ``[points, images, *W.shape]``."""
        steps = self.beta * directions
        if self.antithetic:
            steps = np.concatenate([steps, -steps])
        origin = np.broadcast_to(weight, steps.shape[1:])[None]
        return np.concatenate([origin, origin + steps]).astype("float32")

    def gradient(self, losses: Any, directions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The estimate of dL/dW from the losses at `points` (in the same order): the batch's
        mean loss at each point ``[points]``, or each image's ``[points, images]``, which
        directions drawn per image need."""
        losses = np.asarray(losses, dtype="float64")
        losses = losses[:, None] if losses.ndim == 1 else losses
        if losses.shape[0] != self.points_per_step or (
            self.per_image and losses.shape[1:] != directions.shape[1:2]
        ):
            raise ValueError(
                f"an estimate needs the losses at {self.points_per_step} points (W and each "
                f"perturbed W){', for each image' if self.per_image else ''}, "
                f"got shape {losses.shape}"
            )
        slopes = self.slopes(losses)
        if not self.per_image:  # the slope of the mean loss: the mean of the images' slopes
            slopes = slopes.mean(axis=1)
        scale = self.dimension(mask) / slopes.size
        return self.clipped(scale * np.tensordot(slopes, directions, axes=slopes.ndim))

    def slopes(self, values: np.ndarray) -> np.ndarray:
        """The finite differences ``[q, ...]`` along each direction of ``values`` (losses or
        logits) at `points` ``[points, ...]``: forward, or central when antithetic."""
        q = self.directions
        if self.antithetic:
            return (values[1 : q + 1] - values[q + 1 :]) / (2 * self.beta)
        return (values[1:] - values[:1]) / self.beta

    def clipped(self, estimate: np.ndarray) -> np.ndarray:
        """``estimate`` with its norm bounded by ``clip`` (as it is without one), float32."""
        norm = float(np.sqrt(np.sum(estimate**2)))
        if self.clip is not None and norm > self.clip:
            estimate = estimate * (self.clip / norm)
        return estimate.astype("float32")


def _gaussian(
    rng: np.random.Generator,
    count: int,
    dimension: int,
    basis: np.ndarray | None,
    complement: bool,
) -> np.ndarray:
    """``count`` standard normal draws ``[count, dimension]`` (float32), in ``basis``'s span
    (its ``k`` orthonormal columns), in its complement, or, without a basis, everywhere."""
    if basis is None or not complement:
        width = dimension if basis is None else basis.shape[1]
        draws = rng.standard_normal((count, width))
        draws = draws if basis is None else draws @ basis.T
    else:
        draws = rng.standard_normal((count, dimension))
        draws = draws - (draws @ basis) @ basis.T
    return draws.astype("float32")


def program_frames(
    program: keras.layers.Layer, images: Any, weights: np.ndarray, part: int = 0
) -> np.ndarray:
    """The frames ``X_adv`` of ``images`` (what the program layer takes: task images, or an
    input encoder's canvases) under each program weight in ``weights``, ``[k * batch, n, n,
    3]``, through part ``part``'s mask: ``weights`` is ``[k, *weight_shape]`` (each point one
    W for the batch) or, with directions for each image, ``[k, batch, *weight_shape]``; the
    program's own W is left as it is (`FrameProgram.frames`)."""
    frames = [program.frames(images, weight, part=part) for weight in weights]
    return np.concatenate([keras.ops.convert_to_numpy(f) for f in frames])
