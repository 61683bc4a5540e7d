"""How much of each image's gradient in W can other images' Jacobians predict?

A zeroth-order estimate's variance grows with ``mean_b |g_b|^2``, each image's gradient. A
control variate subtracts a prediction ``h_b`` of ``g_b`` from each image's slopes and adds
it back exactly, leaving the variance of ``g_b - h_b``: the estimate then needs fewer queries
by the factor ``|g_b|^2 / |g_b - h_b|^2``. Black-box training knows each image's
``dL/dscores`` (from the answers) and can pool the task scores' Jacobian over earlier images,
so the natural predictors are ``h_b = Jbar^T dL/dscores_b`` with ``Jbar`` the mean Jacobian of
other images (``pooled``), a best multiple of it (``pooled_shrunk``), or the mean Jacobian of
other images of the same label (``by_class``). For a saved program of a one-part task with a
learned map, on the 16 x 16 x 3 grid the black-box directions see, with exact Jacobians (a
bound: a black-box run would pool noisy ones), this prints the residual share
``sum |g_b - h_b|^2 / sum |g_b|^2`` over the second half of ``--images`` training images,
the predictors fitted on the first half:

    python benchmarks/gradient_predictability.py --program runs/bb/program --images 128
"""

import argparse
import itertools
import json

import numpy as np
from per_image_directions import load_model_and_task
from pooled_jacobian import score_jacobians


def jacobians_and_gradients(model, task, images):
    """``[n, classes, d]`` task-score Jacobians, ``[n, d]`` loss gradients and the labels of
    the first ``images`` training images (batches of 32)."""
    rows, gradients, labels = [], [], []
    batches = task.dataset("train", 32, shuffle=True, seed=5)
    for batch_images, batch_labels in itertools.islice(batches, -(-images // 32)):
        jacobian, gradient = score_jacobians(model, batch_images, batch_labels)
        rows.append(jacobian.reshape(*jacobian.shape[:2], -1))
        gradients.append(gradient.reshape(len(gradient), -1))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(rows), np.concatenate(gradients), np.concatenate(labels)


def residuals(rows, gradients, labels):
    """The residual shares of the three predictors, and the shrinking factor."""
    half = len(labels) // 2
    fitted, held = slice(0, half), slice(half, None)
    # each image's dL/dscores: its gradient is exactly its Jacobian's rows weighted by it
    weights = [np.linalg.lstsq(r.T, g, rcond=None)[0] for r, g in zip(rows, gradients)]
    mean_rows = rows[fitted].mean(axis=0)
    pooled = np.stack([mean_rows.T @ w for w in weights[held]])
    by_label = {c: rows[fitted][labels[fitted] == c].mean(axis=0) for c in set(labels[fitted])}
    by_class = np.stack(
        [by_label.get(c, mean_rows).T @ w for c, w in zip(labels[held], weights[held])]
    )
    target = gradients[held]
    alpha = float(np.sum(pooled * target) / np.sum(pooled**2))

    def share(prediction):
        return round(float(np.sum((target - prediction) ** 2) / np.sum(target**2)), 3)

    return {
        "pooled": share(pooled),
        "pooled_shrunk": share(alpha * pooled),
        "alpha": round(alpha, 3),
        "by_class": share(by_class),
        "fitted_per_label": np.bincount(labels[fitted]).tolist(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--images", type=int, default=128)
    args = parser.parse_args()
    model, task = load_model_and_task(args.program)
    rows, gradients, labels = jacobians_and_gradients(model, task, args.images)
    print(json.dumps({"images": len(labels), **residuals(rows, gradients, labels)}))


if __name__ == "__main__":
    main()
