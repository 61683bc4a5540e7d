"""``arnn classify``: a backbone's own ImageNet top-k for image files."""

from __future__ import annotations

import argparse
import json
from typing import Any

from arnn_tf.cli.arguments import positive_int
from arnn_tf.cli.commands.options import add_backbone_arguments, add_json_argument


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn classify`` to the sub-parsers ``commands``."""
    classify = commands.add_parser(
        "classify", help="a backbone's own ImageNet top-k for image files"
    )
    classify.add_argument("images", nargs="+")
    add_backbone_arguments(classify)
    classify.add_argument("--top", type=positive_int, default=5)
    add_json_argument(classify)
    return classify


def run(args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    """Runs ``arnn classify``; prints and returns the top classes of each image."""
    from arnn_tf.backbones import build_backbone, imagenet_top_k
    from arnn_tf.modalities.image.files import read_images

    backbone = build_backbone(args.backbone, args.weights)
    size = int(backbone.input_shape[1])
    results = imagenet_top_k(backbone, read_images(args.images, (size, size), 3), args.top)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for path, entries in zip(args.images, results):
            print(
                f"{path}: "
                + ", ".join(f"{e['label']} ({e['index']}) {e['probability']:.3f}" for e in entries)
            )
    return results
