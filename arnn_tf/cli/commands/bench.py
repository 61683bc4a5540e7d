"""``arnn bench``: training steps timed, images per second and peak memory."""

from __future__ import annotations

import argparse
import json
from typing import Any

from arnn_tf.cli.arguments import non_negative_int, positive_int
from arnn_tf.cli.commands.options import add_backbone_arguments, add_json_argument
from arnn_tf.settings import PRECISIONS


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn bench`` to the sub-parsers ``commands``."""
    bench = commands.add_parser("bench", help="time training steps: images/second and peak memory")
    add_backbone_arguments(bench)
    bench.add_argument("--batch-size", type=positive_int, default=32)
    bench.add_argument(
        "--steps", type=positive_int, default=20, help="timed steps, after --warmup untimed ones"
    )
    bench.add_argument("--warmup", type=non_negative_int, default=3)
    bench.add_argument(
        "--image-size", type=positive_int, default=32, help="task image size (square, RGB)"
    )
    bench.add_argument("--precision", default="float32", choices=PRECISIONS)
    bench.add_argument(
        "--jit",
        default="auto",
        choices=("auto", "on", "off"),
        help="XLA: auto (Keras' choice: on for GPUs, off on CPU-only machines)",
    )
    add_json_argument(bench)
    return bench


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``arnn bench``; prints and returns the measurement."""
    from arnn_tf.bench import benchmark_training

    jit = {"auto": "auto", "on": True, "off": False}[args.jit]
    result = benchmark_training(
        args.backbone,
        args.batch_size,
        args.steps,
        args.image_size,
        args.precision,
        args.warmup,
        args.weights,
        jit,
    )
    print(
        json.dumps(result)
        if args.json
        else f"{result['backbone']} batch {result['batch_size']} {result['precision']} "
        f"on {result['device']}: "
        f"{result['images_per_second']:.1f} images/s, peak memory {result['peak_memory_mb']:.0f} MB"
    )
    return result
