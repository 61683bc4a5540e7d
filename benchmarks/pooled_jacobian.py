"""Do a batch's images share their Jacobian in W, and how close does pooling bring estimates?

For a saved program of a one-part task with a learned map, on the 16 x 16 x 3 grid the
black-box directions see (`per_image_directions.smooth`):

1. For one batch of ``--batch-size``, each image's Jacobian of the map's task scores in W:
   the mean cosine of each image's rows with the batch's mean rows (``1 / sqrt(batch)`` where
   they are unrelated), and the cosine of the batch gradient computed through the mean
   Jacobian with the exact one.
2. Over ``--steps`` batches with W held, the cosine of each step's own estimate (directions
   for each image) and of the pooled Jacobian's (`arnn_tf.black_box.pooled_jacobian`, memory
   ``--memory``) with that batch's exact gradient on the grid.

One JSON line for the first, then one every tenth step:

    python benchmarks/pooled_jacobian.py --program runs/bb/program --steps 80 --memory 50
"""

import argparse
import json

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.black_box import LocalQuery, ZerothOrderEstimator, program_frames
from arnn_tf.black_box.pooled_jacobian import PooledJacobian
from arnn_tf.training.losses import per_example_loss
from per_image_directions import cosine, load_model_and_task, smooth

GRID = 16


def score_jacobians(model, images, labels):
    """Each image's task-score Jacobian rows ``[batch, classes, *W]`` and loss gradient, on
    the grid."""
    kernel, bias = [tf.constant(a, tf.float32) for a in model.label_map.parameters()]
    mask, weight = model.program.mask, model.program.weight
    rows, gradients = [], []
    for b in range(len(labels)):
        with tf.GradientTape(persistent=True) as tape:
            logits = model.backbone(model.adversarial_inputs(images[b : b + 1]), training=False)
            scores = keras.ops.matmul(logits, kernel) + bias
            each = [tf.reduce_sum(scores[:, k]) for k in range(scores.shape[-1])]
            loss = keras.ops.mean(
                per_example_loss(model, labels[b : b + 1], model.answers(logits, [1]))
            )
        jacobian = np.stack([tape.gradient(s, weight).numpy() for s in each])
        rows.append(smooth(jacobian, mask, GRID)[0])
        gradients.append(smooth(tape.gradient(loss, weight).numpy()[None], mask, GRID)[0][0])
    return np.stack(rows), np.stack(gradients)


def agreement(model, images, labels):
    """Part 1: how far the images' Jacobians agree."""
    rows, gradients = score_jacobians(model, images, labels)
    mean_rows = rows.mean(axis=0)
    row_cosines = [cosine(r, m) for image in rows for r, m in zip(image, mean_rows)]
    through_mean = []
    for image, gradient in zip(rows, gradients):
        basis = image.reshape(len(image), -1).T
        weights = np.linalg.lstsq(basis, gradient.ravel(), rcond=None)[0]
        through_mean.append((mean_rows.reshape(len(image), -1).T @ weights).reshape(gradient.shape))
    return {
        "batch": len(labels),
        "row_cosine_with_mean": round(float(np.mean(row_cosines)), 3),
        "batch_gradient_cosine_through_mean": round(
            cosine(np.mean(through_mean, axis=0), gradients.mean(axis=0)), 3
        ),
    }


def estimates(model, images, labels, estimator, pooled, step):
    """One step's own estimate and the pooled Jacobian's, after updating it."""
    mask = model.program.mask
    weight = keras.ops.convert_to_numpy(model.program.weight.value)
    directions, coefficients = estimator.draw(mask, np.random.default_rng(step), len(labels))
    points = estimator.points(weight, directions)
    canvases = model.encoders[0](images)
    logits = LocalQuery(model.backbone)(program_frames(model.program, canvases, points))
    center = tf.constant(logits[: len(labels)])
    with tf.GradientTape() as tape:
        tape.watch(center)
        loss = keras.ops.mean(per_example_loss(model, labels, model.answers(center, [len(labels)])))
    logit_gradient = tape.gradient(loss, center).numpy().sum(axis=0)
    probabilities = model.answers(logits, [len(logits)])
    tiled = keras.ops.tile(labels, (len(points),))
    losses = keras.ops.reshape(per_example_loss(model, tiled, probabilities), (len(points), -1))
    own = estimator.gradient(keras.ops.convert_to_numpy(losses), directions, mask)
    answers = logits.reshape(len(points), len(labels), -1)
    changes = (answers[1:] - answers[:1]) / estimator.beta
    flat = coefficients.reshape(-1, pooled.dimension)
    pooled.update(changes.reshape(-1, changes.shape[-1]), flat)
    return own, estimator.lift(pooled.gradient(logit_gradient), mask)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--memory", type=float, default=50)
    args = parser.parse_args()
    model, task = load_model_and_task(args.program)
    images, labels = next(iter(task.dataset("train", args.batch_size, shuffle=True, seed=3)))
    print(json.dumps(agreement(model, images, labels)), flush=True)
    estimator = ZerothOrderEstimator(10, zo_resolution=GRID, per_image=True)
    pooled = PooledJacobian(args.memory, estimator.dimension(model.program.mask))
    batches = iter(task.dataset("train", 32, shuffle=True, seed=1))
    for step in range(args.steps):
        images, labels = next(batches)
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(per_example_loss(model, labels, model(images)))
        exact = tape.gradient(loss, model.program.weight).numpy()
        seen = smooth(exact[None], model.program.mask, GRID)[0][0]
        own, through_pool = estimates(model, images, labels, estimator, pooled, step)
        if (step + 1) % 10 == 0:
            print(json.dumps({"step": step + 1, "own_cosine": round(cosine(own, seen), 3),
                              "pooled_cosine": round(cosine(through_pool, seen), 3)}), flush=True)


if __name__ == "__main__":
    main()
