"""Training-step time of a text model at two frame sizes (`--frame-size`), on this machine.

    python benchmarks/frame_speed.py [SIZE ...]      (default: 224 112)

EfficientNet-Lite0 with its ImageNet weights, batch 32, 40 token ids a text, 16-pixel patches;
3 warm-up steps, then the mean of 15 `train_on_batch` calls.
"""

import sys
import time

import numpy as np

from arnn_tf.backbones import build_backbone
from arnn_tf.modalities.text.model import build_text_model

for size in [int(s) for s in sys.argv[1:]] or [224, 112]:
    backbone = build_backbone("efficientnet_lite0", "imagenet", input_size=size)
    model = build_text_model(backbone, 20000, 2)
    model.compile()
    ids = np.random.default_rng(0).integers(0, 20000, (32, 40)).astype("int32")
    labels = np.zeros(32, "int32")
    for _ in range(3):
        model.train_on_batch(ids, labels)
    start = time.perf_counter()
    for _ in range(15):
        model.train_on_batch(ids, labels)
    print(f"frame {size}: {(time.perf_counter() - start) / 15:.3f} s a step", flush=True)
