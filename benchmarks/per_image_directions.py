"""Do the images of a batch agree on W's gradient, and what do directions per image gain?

For one training batch of a saved program's task (a one-part model), computes each image's
exact gradient of its loss in W (backpropagation) and their agreement ``mean |g_b|^2 / (batch
|g|^2)`` (1 / batch where all agree, 1 where they are unrelated), which is the variance of the
estimate with directions drawn for each image relative to the shared directions' at the same
frames (`arnn_tf.black_box.estimator`). Then draws both estimates from `LocalQuery` answers,
``--draws`` times each, and prints their cosines with the batch's exact gradient (mean and
standard deviation) as one JSON line. The cosines are with the part of that gradient the
estimate's directions (16 x 16 x 3, upsampled) can see, which is its expectation's direction;
the agreement is given for the frame's gradients and for the grid's.

    arnn train --steps 400 --freeze-program --out runs/bb/control   # the map alone, W = 0
    python benchmarks/per_image_directions.py --program runs/bb/control/program
"""

import argparse
import json

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.black_box.defaults import DEFAULT_ZO_RESOLUTION
from arnn_tf.black_box import LocalQuery, ZerothOrderEstimator, program_frames
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import load_recipe
from arnn_tf.tasks.specs import get_task
from arnn_tf.training.losses import per_example_loss, task_loss


def image_gradients(model, images, labels):
    """Each image's gradient of its own loss in W, ``[batch, *W.shape]``."""
    gradients = []
    for b in range(len(labels)):
        with tf.GradientTape() as tape:
            loss = per_example_loss(model, labels[b : b + 1], model(images[b : b + 1]))
        gradients.append(keras.ops.convert_to_numpy(tape.gradient(loss, model.program.weight)))
    return np.stack(gradients)


def smooth(gradients, mask, grid):
    """The gradients' components that directions on a ``grid`` x ``grid`` x 3 grid (upsampled,
    masked) can see: ``R R^T g``, with R the masked upsampling (the estimate's expectation is
    along it), and the grid's own ``R^T g``."""
    z = tf.zeros((len(gradients), grid, grid, 3))
    with tf.GradientTape() as tape:
        tape.watch(z)
        up = keras.ops.image.resize(z, gradients.shape[1:3], interpolation="bilinear") * mask
        total = tf.reduce_sum(up * gradients)
    on_grid = tape.gradient(total, z)
    seen = keras.ops.image.resize(on_grid, gradients.shape[1:3], interpolation="bilinear") * mask
    return keras.ops.convert_to_numpy(seen), keras.ops.convert_to_numpy(on_grid)


def agreement(gradients):
    """``mean |g_b|^2 / (batch |mean g|^2)``: 1 / batch where all agree, 1 where unrelated."""
    flat = gradients.reshape(len(gradients), -1)
    return float(np.mean(np.sum(flat**2, axis=1)) / (len(flat) * np.sum(flat.mean(axis=0) ** 2)))


def point_losses(model, images, labels, points):
    """Each image's loss under each program weight in ``points``, ``[points, images]``, from the
    model's own backbone's answers."""
    canvases = model.encoders[0](images)
    logits = LocalQuery(model.backbone)(program_frames(model.program, canvases, points))
    probabilities = model.answers(logits, [len(logits)])
    losses = per_example_loss(model, keras.ops.tile(labels, (len(points),)), probabilities)
    return keras.ops.convert_to_numpy(keras.ops.reshape(losses, (len(points), -1)))


def estimate(model, images, labels, estimator, seed):
    """One estimate of the batch loss's gradient in W from the model's own backbone's answers."""
    mask = model.program.mask
    weight = keras.ops.convert_to_numpy(model.program.weight.value)
    directions = estimator.sample(mask, np.random.default_rng(seed), images=len(labels))
    losses = point_losses(model, images, labels, estimator.points(weight, directions))
    return estimator.gradient(losses, directions, mask)


def cosine(a, b):
    return float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))


def load_model_and_task(path):
    """A saved program's model, compiled with the loss its recipe trains, and its task."""
    saved = SavedProgram.load(path)
    model = saved.build_model()
    model.compile(loss=task_loss(load_recipe(path)))
    return model, get_task(saved.task_name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--directions", type=int, default=10)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    model, task = load_model_and_task(args.program)
    images, labels = next(iter(task.dataset("train", args.batch_size, shuffle=True, seed=0)))
    each = image_gradients(model, images, labels)
    mask = model.program.mask
    seen, on_grid = smooth(each, mask, DEFAULT_ZO_RESOLUTION)
    reference = seen.mean(axis=0)
    result = {
        "batch": len(each),
        "agreement": round(agreement(each), 4),
        "agreement_on_grid": round(agreement(on_grid), 4),
        "draws": args.draws,
    }
    for per_image in (False, True):
        estimator = ZerothOrderEstimator(args.directions, per_image=per_image)
        cosines = [
            cosine(estimate(model, images, labels, estimator, seed), reference)
            for seed in range(args.draws)
        ]
        name = "per_image" if per_image else "shared"
        result[f"{name}_cosine"] = round(float(np.mean(cosines)), 4)
        result[f"{name}_cosine_sd"] = round(float(np.std(cosines)), 4)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
