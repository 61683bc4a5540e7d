"""Does a local network fitted to the served network's answers become a stand-in for it?

    python benchmarks/stand_in_alignment.py [--distill-steps 300]

A black-box run could train W white-box on a local stand-in instead of estimating its
gradient from queries (AReS). A sibling network as it is does not stand in: its gradient in W
is orthogonal to the served network's (`benchmarks/gradient_transfer.py`). Here the local
network (``--local``, default EfficientNet-Lite1) is first fitted to the served network's
answers (``--served``, default Lite0; its 1,000 logits for one query a frame): the KL divergence
of its softmax from the served one, all its weights trained with Adam, on counting images under
random smooth programs (grids of 8 to 112, 0 to 2 per entry), as a run would query them before
it knows its W. Before and after, on one held-out batch of 64 counting images, it prints the
cosine of the two networks' gradients of the task loss in W and their top-1 agreement, at
three states of the served network's white-box counting program (trained here first,
``--steps``): W = 0, W halved and W, each with that program's learned map. One JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import RECIPES
from arnn_tf.runs import build_model, train
from arnn_tf.tasks.specs import recipe_task


def random_programs(count: int, frame: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` smooth random W's: a Gaussian grid of 8 to 112, upsampled, 0 to 2 an entry."""
    grid = int(rng.choice([8, 16, 32, frame]))
    coarse = rng.standard_normal((count, grid, grid, 3)).astype("float32")
    scale = rng.uniform(0.0, 2.0, (count, 1, 1, 1)).astype("float32")
    return scale * keras.ops.convert_to_numpy(
        keras.ops.image.resize(coarse, (frame, frame), "bilinear")
    )


def framed(model: keras.Model, images: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """The frames the backbone sees for ``images`` under one W per image."""
    canvas = model.encoder(images)
    program = tf.tanh(weights * model.program.mask)
    return tf.clip_by_value(canvas + program, -1.0, 1.0)


def distill(local: keras.Model, served: keras.Model, task, steps: int, seed: int) -> float:
    """Fits ``local``'s backbone to ``served``'s answers; returns the last 20 steps' mean KL."""
    rng = np.random.default_rng(seed)
    backbone = local.backbone
    backbone.trainable = True
    optimizer = keras.optimizers.Adam(1e-4)
    data = iter(task.dataset("train", 32, shuffle=True, seed=seed, repeat=True))
    losses = []
    for _ in range(steps):
        images, _ = next(data)
        weights = random_programs(len(images), served.program.frame_size, rng)
        x = framed(served, images, weights)
        answers = tf.nn.softmax(served.backbone(x, training=False))
        with tf.GradientTape() as tape:
            mine = tf.nn.log_softmax(backbone(x, training=False))
            gaps = answers * (tf.math.log(answers + 1e-12) - mine)
            loss = tf.reduce_mean(tf.reduce_sum(gaps, -1))
        optimizer.apply_gradients(
            zip(tape.gradient(loss, backbone.trainable_weights), backbone.trainable_weights)
        )
        losses.append(float(loss))
    backbone.trainable = False
    return float(np.mean(losses[-20:]))


def task_gradient(model: keras.Model, images: tf.Tensor, labels: tf.Tensor) -> np.ndarray:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, model(images)))
    return tape.gradient(loss, model.program.weight).numpy()


def accuracy(model: keras.Model, images: tf.Tensor, labels: tf.Tensor) -> float:
    return float(np.mean(np.argmax(model(images), -1) == labels))


def compare(served: keras.Model, local: keras.Model, weight: np.ndarray, batch) -> dict:
    """Cosines of the gradients in W and top-1 agreement at W = 0, W / 2 and W."""
    images, labels = batch
    out = {}
    for name, scale in (("W0", 0.0), ("Whalf", 0.5), ("W", 1.0)):
        for model in (served, local):
            model.program.weight.assign(scale * weight)
        a, b = task_gradient(served, images, labels), task_gradient(local, images, labels)
        x = served.adversarial_inputs(images)
        agree = np.mean(
            np.argmax(served.backbone(x), -1) == np.argmax(local.backbone(x), -1)
        )
        out[name] = {
            "cosine": round(float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b)), 3),
            "top1_agreement": round(float(agree), 3),
            "served_accuracy": round(accuracy(served, images, labels), 3),
            "local_accuracy": round(accuracy(local, images, labels), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--served", default="efficientnet_lite0")
    parser.add_argument("--local", default="efficientnet_lite1")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--distill-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/stand_in"))
    args = parser.parse_args()
    recipe = RECIPES["counting"].replace(steps=args.steps, backbone=args.served)
    if not (args.out / "program" / "W.npy").exists():
        train(recipe, args.out, verbose=False)
    task = recipe_task(recipe, None)
    served = SavedProgram.load(args.out / "program").build_model()
    weight = served.program.weight.numpy()
    local_backbone = build_backbone(args.local, input_size=recipe.frame_size)
    local = build_model(recipe.replace(backbone=args.local), task, backbone=local_backbone)
    batch = next(iter(task.sample("test", 64, 64)))
    local(batch[0][:1])
    local.label_map.set_weights(served.label_map.get_weights())
    before = compare(served, local, weight, batch)
    kl = distill(local, served, task, args.distill_steps, seed=1)
    after = compare(served, local, weight, batch)
    print(json.dumps({
        "served": args.served, "local": args.local, "distill_steps": args.distill_steps,
        "queries": 32 * args.distill_steps, "final_kl": round(kl, 4),
        "before": before, "after": after,
    }))


if __name__ == "__main__":
    main()
