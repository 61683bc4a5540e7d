"""Does a Newton step along each random direction lower the loss where a plain estimate cannot?

The loss is sharply curved in W: a random direction's curvature dwarfs its slope, so a step
along a noisy estimate raises the loss through the curvature faster than the slope lowers it.
Central differences give both along each direction: the slope ``(L+ - L-) / (2 beta)`` and
the curvature ``(L+ + L- - 2 L0) / beta^2``. The 1-D Newton steps ``-slope / curvature``
along each direction (the curvature's size floored at ``--floor``) add up to a step that is
short where the loss is curved. For a saved program of a one-part task, one batch of
``--batch-size`` (A) and a held-out batch of 256 (B): the loss change of ``eta`` times that
step (q = ``--directions`` on the 16 x 16 x 3 grid), and of steps of several sizes along the
exact gradient of A and along its signs (as Adam's first steps go), on A and on B. One JSON
line each:

    python benchmarks/directional_newton.py --program runs/bb/program --directions 10
"""

import argparse
import json

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.black_box import ZerothOrderEstimator
from arnn_tf.training.losses import per_example_loss
from per_image_directions import load_model_and_task, point_losses


def losses_at(model, images, labels, weights):
    """The batch's mean loss under each program weight ``[k, *W]``."""
    return point_losses(model, images, labels, weights).mean(axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--directions", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--beta", type=float, default=0.05)
    parser.add_argument("--floor", type=float, default=0.1)
    args = parser.parse_args()
    model, task = load_model_and_task(args.program)
    mask = model.program.mask
    weight = keras.ops.convert_to_numpy(model.program.weight.value)
    batch_a = next(iter(task.dataset("train", args.batch_size, shuffle=True, seed=5)))
    batch_b = next(iter(task.dataset("train", 256, shuffle=True, seed=6)))
    estimator = ZerothOrderEstimator(args.directions, args.beta, antithetic=True)
    directions = estimator.sample(mask, np.random.default_rng(0))
    values = losses_at(model, *batch_a, estimator.points(weight, directions))
    q = args.directions
    slopes = (values[1 : q + 1] - values[q + 1 :]) / (2 * args.beta)
    curvatures = (values[1 : q + 1] + values[q + 1 :] - 2 * values[0]) / args.beta**2
    bounded = np.maximum(np.abs(curvatures), args.floor)
    newton = -np.tensordot(slopes / bounded, directions, axes=1)
    print(json.dumps({"slope_rms": round(float(np.sqrt(np.mean(slopes**2))), 5),
                      "curvature_median": round(float(np.median(curvatures)), 4),
                      "negative_curvatures": int(np.sum(curvatures < 0)),
                      "newton_norm": round(float(np.linalg.norm(newton)), 4),
                      "expected_drop": round(float(np.sum(slopes**2 / bounded) / 2), 5)}),
          flush=True)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(per_example_loss(model, batch_a[1], model(batch_a[0])))
    exact = tape.gradient(loss, model.program.weight).numpy()
    steps = {f"newton x{eta}": eta * newton for eta in (0.25, 0.5, 1.0)}
    norms = (0.01, 0.03, 0.1, 0.3, 1.0)
    steps.update({f"exact, norm {n}": -n * exact / np.linalg.norm(exact) for n in norms})
    signs = np.sign(exact) * mask
    steps.update({f"sign, norm {n}": -n * signs / np.linalg.norm(signs) for n in norms})
    for name, step in steps.items():
        points = np.stack([weight, weight + step])
        change_a = np.diff(losses_at(model, *batch_a, points))[0]
        change_b = np.diff(losses_at(model, *batch_b, points))[0]
        print(json.dumps({"step": name, "norm": round(float(np.linalg.norm(step)), 4),
                          "change_a": round(float(change_a), 5),
                          "change_b": round(float(change_b), 5)}), flush=True)


if __name__ == "__main__":
    main()
