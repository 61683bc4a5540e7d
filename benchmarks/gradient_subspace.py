"""How much of a batch's gradient in W lies in a subspace that earlier batches give?

A zeroth-order estimate with q directions drawn in a k-dimensional subspace that holds a share
f of the gradient's energy has cosine about ``sqrt(f q / k)`` with the gradient, against
``sqrt(q / d)`` for directions drawn in all d dimensions of the grid. For a saved program of
a one-part task with a learned map, W held, over ``--steps`` batches of 32 on the ``--grid``
c x c x 3 grid the black-box directions see (16 by default; `per_image_directions.smooth`'s
grid coordinates), this measures f for the top-k subspaces of:

- ``images``: the earlier batches' per-image exact gradients (a bound: black-box training has
  no exact gradients);
- ``pooled``: the logits' Jacobian pooled from finite differences along per-image directions,
  as a black-box run sees them (`arnn_tf.black_box.pooled_jacobian`, memory ``--memory``): its
  top right singular vectors;
- ``scores``: the same Jacobian read through the learned map's kernel (the task scores' pooled
  Jacobian, at most as many directions as the task has classes);
- ``random``: k / d.

One JSON line every fifth step (the shares averaged over the steps since the last line):

    python benchmarks/gradient_subspace.py --program runs/bb/program --steps 40
"""

import argparse
import json

import numpy as np

from arnn_tf.black_box import ZerothOrderEstimator
from arnn_tf.black_box.pooled_jacobian import PooledJacobian
from per_image_directions import image_gradients, load_model_and_task, smooth
from pooled_jacobian import estimates

RANKS = (10, 25, 50, 100)


def share(basis: np.ndarray, gradient: np.ndarray, rank: int) -> float:
    """The share of ``gradient``'s energy in the span of ``basis``'s first ``rank`` columns."""
    inside = basis[:, :rank].T @ gradient
    return float(np.sum(inside**2) / np.sum(gradient**2))


def top_directions(vectors: np.ndarray) -> np.ndarray:
    """The right singular vectors of ``vectors`` ``[n, d]``, as columns, largest first."""
    return np.linalg.svd(vectors, full_matrices=False)[2].T


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--memory", type=float, default=50)
    parser.add_argument("--history", type=int, default=10, help="batches of image gradients kept")
    parser.add_argument("--grid", type=int, default=16)
    args = parser.parse_args()
    model, task = load_model_and_task(args.program)
    mask = model.program.mask
    estimator = ZerothOrderEstimator(10, zo_resolution=args.grid, per_image=True)
    dimension = estimator.dimension(mask)
    pooled = PooledJacobian(args.memory, dimension)
    history: list[np.ndarray] = []
    shares: dict[str, list[float]] = {}
    batches = iter(task.dataset("train", 32, shuffle=True, seed=1))
    for step in range(args.steps):
        images, labels = next(batches)
        each = smooth(image_gradients(model, images, labels), mask, args.grid)[1]
        each = each.reshape(len(each), -1)
        gradient = each.mean(axis=0)
        if history and pooled.jacobian is not None:
            kernel = model.label_map.parameters()[0]
            sources = {
                "images": top_directions(np.concatenate(history[-args.history :])),
                "pooled": top_directions(pooled.jacobian),
                "scores": top_directions(kernel.T @ pooled.jacobian),
            }
            for name, basis in sources.items():
                for rank in RANKS if name != "scores" else (3, 5, len(kernel.T)):
                    shares.setdefault(f"{name}_{rank}", []).append(share(basis, gradient, rank))
        history.append(each)
        estimates(model, images, labels, estimator, pooled, step)
        if (step + 1) % 5 == 0 and shares:
            line = {"step": step + 1, **{k: round(float(np.mean(v)), 3) for k, v in shares.items()}}
            line.update({f"random_{rank}": round(rank / dimension, 3) for rank in RANKS})
            print(json.dumps(line), flush=True)
            shares = {}


if __name__ == "__main__":
    main()
