"""Peer baseline: a plain hand-written TensorFlow reprogramming step, no arnn-tf code.

The same computation as `arnn bench`: pad 32x32 task images to 224, add tanh(W * M), run a
frozen EfficientNet-Lite0 graph built by keras.applications' EfficientNet builder (random
weights: speed does not depend on them), cross-entropy on the first 10 logits plus
lambda * ||W||^2, Adam on W, in a `tf.function` with `tf.GradientTape`.

    python benchmarks/peer_tf_loop.py --batch-size 32 --steps 20 [--precision mixed_bfloat16]

TensorFlow's own defaults apply (its oneDNN kernels are on by default only on CPUs with
AVX-512 VNNI, BF16 or AMX); `TF_ENABLE_ONEDNN_OPTS=1` in the environment forces them on, and
the output's "onednn" field says which was used.
"""

import argparse
import json
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf
from keras.src.applications.efficientnet import DEFAULT_BLOCKS_ARGS, EfficientNet

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--precision", default="float32")
args = parser.parse_args()
keras.config.set_dtype_policy(args.precision)

blocks = [dict(block, se_ratio=0.0) for block in DEFAULT_BLOCKS_ARGS]
net = EfficientNet(1.0, 1.0, 224, blocks_args=blocks, activation="relu6", name="lite0",
                   weights=None, classifier_activation=None)
net.trainable = False

n, task = 224, 32
pad = (n - task) // 2
mask = np.ones((n, n, 3), "float32")
mask[pad : pad + task, pad : pad + task] = 0
mask = tf.constant(mask)
W = tf.Variable(tf.zeros((n, n, 3)))
optimizer = keras.optimizers.Adam(0.05)
compute = tf.bfloat16 if "bfloat16" in args.precision else tf.float16 if "float16" in args.precision else tf.float32


@tf.function
def step(images, labels):
    with tf.GradientTape() as tape:
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        x_adv = tf.clip_by_value(x + tf.tanh(W * mask), -1.0, 1.0)
        logits = tf.cast(net((x_adv + 1.0) * 127.5, training=False), tf.float32)[:, :10]
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        loss += 1e-6 * tf.reduce_sum(W * W)
    optimizer.apply_gradients([(tape.gradient(loss, W), W)])
    return loss


rng = np.random.default_rng(0)
images = tf.constant(rng.integers(0, 256, (args.batch_size, task, task, 3)).astype("uint8"))
labels = tf.constant(rng.integers(0, 10, args.batch_size).astype("int32"))
for _ in range(args.warmup):
    step(images, labels).numpy()
start = time.perf_counter()
for _ in range(args.steps):
    loss = step(images, labels)
loss.numpy()
seconds = time.perf_counter() - start
print(json.dumps({"peer": "tensorflow_loop", "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "tensorflow default"),
                  "batch_size": args.batch_size, "precision": args.precision,
                  "images_per_second": round(args.steps * args.batch_size / seconds, 2),
                  "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
