"""Does one network's gradient in W point where another's does? (A lead for black-box runs.)

    python benchmarks/gradient_transfer.py [SURROGATE TARGET]
        (default: efficientnet_lite0 efficientnet_lite1)

A black-box run could take a local network's exact gradient of the task loss in W as a prior
direction for the served network's estimate (prior-guided zeroth-order methods). That helps
only if the two gradients agree. For one batch of 64 counting images, the `counting` recipe's
model (224 frame, learned map) is built on each network with the same W and map, and the
cosine of the two gradients in W is printed, over W's entries and pooled to 16 x 16 x 3 (the
resolution of the black-box directions); beside it, as the reference for agreement, the cosine
of the target's own gradients on that batch and on another batch of 64. At four states: W = 0 with the initial map; W = 0
with the committed counting program's map; that program's W and map (trained on Lite0); and
W random (0.3 per entry) with that map.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.image.model import image_model_for
from arnn_tf.programs.saved import SavedProgram
from arnn_tf.recipes import load_recipe
from arnn_tf.tasks.specs import get_task

PROGRAM = "saved_programs/counting-efficientnet_lite0"

names = sys.argv[1:3] or ["efficientnet_lite0", "efficientnet_lite1"]
recipe, task = load_recipe("counting"), get_task("counting")
(images, labels), (other_images, other_labels) = task.sample("train", 128, 64).take(2)
models = []
for name in names:
    model = image_model_for(recipe, task, build_backbone(name, input_size=224))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy())
    model(images[:1])
    models.append(model)
models[1].label_map.set_weights(models[0].label_map.get_weights())


def gradient(model: keras.Model, batch: tuple = (images, labels)) -> np.ndarray:
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(model.loss.call(batch[1], model(batch[0])))
    return keras.ops.convert_to_numpy(tape.gradient(loss, model.program.weight))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))


def pooled(g: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(keras.ops.image.resize(g[None], (16, 16), "area"))[0]


def report(state: str) -> None:
    first, second = (gradient(model) for model in models)
    again = gradient(models[1], (other_images, other_labels))
    print(f"{state}: networks' cosine {cosine(first, second):.3f} over W, "
          f"{cosine(pooled(first), pooled(second)):.3f} pooled to 16 x 16; the target's on two "
          f"batches {cosine(second, again):.3f}, {cosine(pooled(second), pooled(again)):.3f}",
          flush=True)


def set_all(weight: np.ndarray | None = None, label_map: list | None = None) -> None:
    for model in models:
        if weight is not None:
            model.program.weight.assign(weight)
        if label_map is not None:
            model.label_map.set_weights(label_map)


report("W = 0, initial map")
trained = SavedProgram.load(PROGRAM).build_model(build_backbone("efficientnet_lite0"))
trained(images[:1])
set_all(label_map=trained.label_map.get_weights())
report("W = 0, the committed program's map")
set_all(weight=keras.ops.convert_to_numpy(trained.program.weight))
report("the committed program's W and map")
rng = np.random.default_rng(0)
set_all(weight=0.3 * rng.standard_normal(models[0].program.weight.shape).astype("float32"))
report("W random (0.3), that map")
