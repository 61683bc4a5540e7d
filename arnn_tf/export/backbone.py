"""Export the frozen backbone alone: the model a black-box trainer reaches only by querying.

The SavedModel's ``serving_default`` takes ``frames`` (float32 [batch, n, n, 3] in [-1, 1],
the adversarial inputs ``X_adv``) and answers ``logits`` (float32 [batch, 1000]); served with
TensorFlow Serving, a query-only trainer (`arnn_tf.black_box`) learns a program from those
answers without the weights. Frames outside [-1, 1] or not finite are refused with an
``InvalidArgumentError`` that fails that request only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.base import Signature
from arnn_tf.export.writer import version_folder, write_version

FRAMES = "frames"


def export_backbone(
    name: str,
    weights: str | None,
    base_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    input_size: int | None = None,
    version: int | None = None,
) -> Path:
    """Writes backbone ``name`` (``weights`` as `build_backbone` takes them) as version
    ``version`` of ``base_dir``, logits out; returns the version folder."""
    target = version_folder(Path(base_dir), version)
    backbone = build_backbone(name, weights, seed=seed, input_size=input_size)
    size = int(backbone.input_shape[1])

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name=FRAMES)])
    def serving_default(frames: tf.Tensor) -> dict[str, tf.Tensor]:
        in_range = tf.reduce_all(tf.math.is_finite(frames)) & tf.reduce_all(tf.abs(frames) <= 1.0)
        message = f"{FRAMES}: pixels must be finite and within [-1, 1] (X_adv)"
        with tf.control_dependencies([tf.debugging.Assert(in_range, [message])]):
            return {"logits": tf.cast(backbone(frames, training=False), tf.float32)}

    module = tf.Module(name="arnn_backbone")
    module.backbone_variables = [v.value for v in backbone.variables]
    example = np.zeros((1, size, size, 3), dtype="float32")
    write_version(module, {"serving_default": Signature(serving_default, FRAMES, example)}, target)
    return target
