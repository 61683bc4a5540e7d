"""Latency and throughput of an exported SavedModel versus the in-process Keras model.

    .venv/bin/python benchmarks/export_latency.py [--backbone efficientnet_lite0] [--runs 200]

Builds a counting-task-shaped program (36x36x3, 10 classes, random W) on the backbone,
exports it with `arnn_tf.export.export_programs`, loads the export with
`tf.saved_model.load`, and times, on the same random images: batch-1 latency (p50/p99 over
``--runs`` calls) and batch-32 throughput (images/s over ``--runs // 10`` calls) for the
Keras model called directly, Keras ``predict``, the export's ``serving_default`` (uint8
pixels) and ``predict_bytes`` (PNG bytes, decoded in the graph). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from typing import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from arnn_tf.backbones import build_backbone  # noqa: E402
from arnn_tf.export import export_programs  # noqa: E402
from arnn_tf.modalities.image.model import build_reprogrammed_model  # noqa: E402
from arnn_tf.programs.saved import SavedProgram  # noqa: E402

SHAPE = (36, 36, 3)
CLASSES = 10


def _time(call: Callable[[], object], runs: int, warmup: int = 5) -> np.ndarray:
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--runs", type=int, default=200, help="batch-1 calls; batch-32 calls are runs // 10")
    args = parser.parse_args()

    weights = None if args.backbone == "tiny_cnn" else "imagenet"  # tiny_cnn is for smoke runs only
    backbone = build_backbone(args.backbone, weights)
    model = build_reprogrammed_model(backbone, SHAPE, CLASSES)
    model.program.weight.assign(np.random.default_rng(0).normal(size=model.program.weight.shape))
    saved = SavedProgram.from_model(model, backbone_name=args.backbone, weights=weights, seed=0,
                                    task_name="counting", class_names=[str(k) for k in range(1, CLASSES + 1)])
    with tempfile.TemporaryDirectory() as base:
        start = time.perf_counter()
        path = export_programs([saved], base)
        export_seconds = time.perf_counter() - start
        loaded = tf.saved_model.load(str(path))
        pixels, encoded = loaded.signatures["serving_default"], loaded.signatures["predict_bytes"]
        rng = np.random.default_rng(1)
        images = {n: rng.integers(0, 256, (n, *SHAPE)).astype("uint8") for n in (1, 32)}
        pngs = {n: tf.constant([tf.io.encode_png(i).numpy() for i in batch]) for n, batch in images.items()}
        tensors = {n: tf.constant(batch) for n, batch in images.items()}
        np.testing.assert_allclose(pixels(images=tensors[32])["probabilities"].numpy(),
                                   model.predict(images[32], verbose=0), atol=1e-4)
        variants: dict[str, Callable[[int], Callable[[], object]]] = {
            "keras_call": lambda n: lambda: model(tensors[n], training=False).numpy(),
            "keras_predict": lambda n: lambda: model.predict(images[n], verbose=0),
            "savedmodel_serving_default": lambda n: lambda: pixels(images=tensors[n])["probabilities"].numpy(),
            "savedmodel_predict_bytes": lambda n: lambda: encoded(image_bytes=pngs[n])["probabilities"].numpy(),
        }
        results = {}
        for name, make in variants.items():
            single = _time(make(1), args.runs)
            batch = _time(make(32), max(3, args.runs // 10))
            results[name] = {"batch1_p50_ms": round(1000 * float(np.percentile(single, 50)), 2),
                             "batch1_p99_ms": round(1000 * float(np.percentile(single, 99)), 2),
                             "batch32_images_per_s": round(32 / float(np.median(batch)), 1)}
    print(json.dumps({"backbone": args.backbone, "task_shape": SHAPE, "runs": args.runs,
                      "export_seconds": round(export_seconds, 1), "cpus": os.cpu_count(),
                      "tensorflow": tf.__version__, "python": platform.python_version(),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
