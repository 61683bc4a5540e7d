"""``arnn predict``: a saved program's classes for image files."""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.commands.options import add_flip_average_override, add_json_argument
from arnn_tf.commands.saved import with_flip_average


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn predict`` to the sub-parsers ``commands``."""
    predict = commands.add_parser("predict", help="classify image files with a saved program")
    predict.add_argument("--program", required=True)
    predict.add_argument("images", nargs="+")
    add_flip_average_override(predict)
    add_json_argument(predict)
    return predict


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs ``arnn predict``; prints and returns one record per image."""
    from arnn_tf.images import read_images
    from arnn_tf.predictions import print_predictions, prediction_record
    from arnn_tf.programs import SavedProgram

    saved = with_flip_average(SavedProgram.load(args.program), args.flip_average)
    height, width, channels = saved.task_image_shape
    images = read_images(args.images, (height, width), channels)
    probabilities = saved.build_model().predict(images, verbose=0)
    predictions = [
        prediction_record(path, int(row.argmax()), saved.class_names[int(row.argmax())], row)
        for path, row in zip(args.images, probabilities)
    ]
    print_predictions(predictions, args.json)
    return predictions
