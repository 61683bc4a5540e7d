"""``arnn classify``: a backbone's own ImageNet top-k for image files."""

from __future__ import annotations

import argparse
import json
from typing import Any

from arnn_tf.arguments import positive_int
from arnn_tf.commands.options import add_backbone_arguments


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn classify`` to the sub-parsers ``commands``."""
    classify = commands.add_parser(
        "classify", help="a backbone's own ImageNet top-k for image files"
    )
    classify.add_argument("images", nargs="+")
    add_backbone_arguments(classify)
    classify.add_argument("--top", type=positive_int, default=5)
    classify.add_argument("--json", action="store_true")
    return classify


def run(args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    """Runs ``arnn classify``; prints and returns the top classes of each image."""
    import keras

    from arnn_tf.backbones import build_backbone
    from arnn_tf.backbones.imagenet_classes import imagenet_class_names
    from arnn_tf.images import read_images

    backbone = build_backbone(args.backbone, args.weights)
    size = int(backbone.input_shape[1])
    pixels = read_images(args.images, (size, size), 3)
    logits = backbone.predict(pixels.astype("float32") / 127.5 - 1.0, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    names = imagenet_class_names()
    top = max(1, min(args.top, probabilities.shape[1]))
    results = [
        [
            {"index": int(i), "label": names[i], "probability": round(float(row[i]), 6)}
            for i in row.argsort()[::-1][:top]
        ]
        for row in probabilities
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for path, entries in zip(args.images, results):
            print(
                f"{path}: "
                + ", ".join(f"{e['label']} ({e['index']}) {e['probability']:.3f}" for e in entries)
            )
    return results
