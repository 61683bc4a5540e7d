"""Are BAR's finite differences the loss's directional derivatives, and how far is W linear?

For one training batch of a saved program's task, draws ``--directions`` unit directions as
`arnn_tf.black_box.ZerothOrderEstimator` does (16 x 16 x 3, upsampled, masked) and, for each
``--betas`` value, compares the forward differences ``[L(W + beta U) - L(W)] / beta`` (from
`LocalQuery` answers, as black-box training computes them) with the exact directional
derivatives ``grad L . U`` (backpropagation). Prints one JSON line per beta: their correlation,
their sizes, the loss changes and the mean step per pixel. A correlation near 1 says the
estimate's inputs are right; loss changes far above ``beta * |grad L . U|`` say how small a
step must stay for the loss to be near linear in W.

    python benchmarks/black_box_finite_differences.py --program runs/bb-control/program
"""

import argparse
import json

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.black_box import LocalQuery, ZerothOrderEstimator, program_frames
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.tasks.specs import get_task


def batch_losses(model, labels, logits, points):
    """The mean cross-entropy of the batch under each of ``points`` program weights."""
    per_image = keras.losses.sparse_categorical_crossentropy(
        keras.ops.tile(labels, (points,)), model.label_map(logits))
    return keras.ops.convert_to_numpy(
        keras.ops.mean(keras.ops.reshape(per_image, (points, -1)), axis=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", required=True)
    parser.add_argument("--directions", type=int, default=20)
    parser.add_argument("--betas", default="0.05,0.5,5,50")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    saved = SavedProgram.load(args.program)
    model = saved.build_model()
    task = get_task(saved.task_name)
    images, labels = next(iter(task.dataset("train", args.batch_size, shuffle=True, seed=0)))
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, model(images)))
    gradient = keras.ops.convert_to_numpy(tape.gradient(loss, model.program.weight))
    directions = ZerothOrderEstimator(args.directions).sample(
        model.program.mask, np.random.default_rng(0))
    exact = np.array([np.sum(u * gradient) for u in directions])
    query = LocalQuery(model.backbone)
    weight = keras.ops.convert_to_numpy(model.program.weight.value)
    for beta in (float(b) for b in args.betas.split(",")):
        points = np.concatenate([weight[None], weight[None] + beta * directions])
        losses = batch_losses(model, labels, query(program_frames(model.program, images, points)),
                              len(points))
        changes = losses[1:] - losses[0]
        print(json.dumps({
            "beta": beta, "correlation": round(float(np.corrcoef(changes / beta, exact)[0, 1]), 3),
            "finite_difference_rms": float(np.sqrt(np.mean((changes / beta) ** 2))),
            "directional_derivative_rms": float(np.sqrt(np.mean(exact ** 2))),
            "loss_change_rms": float(np.sqrt(np.mean(changes ** 2))),
            "step_per_pixel": float(beta * np.abs(directions).mean()),
            "loss": float(loss), "gradient_norm": float(np.linalg.norm(gradient))}), flush=True)


if __name__ == "__main__":
    main()
