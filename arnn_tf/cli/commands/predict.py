"""``arnn predict``: a saved program's classes for image files, or for texts."""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.cli.commands.options import add_flip_average_override, add_json_argument
from arnn_tf.cli.commands.saved import with_flip_average


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn predict`` to the sub-parsers ``commands``."""
    predict = commands.add_parser(
        "predict", help="classify image files, or texts, with a saved program"
    )
    predict.add_argument("--program", required=True)
    predict.add_argument("images", nargs="*", help="image files (for an image program)")
    predict.add_argument(
        "--text", action="append", default=[], help="a text to classify (repeatable)"
    )
    predict.add_argument("--text-file", help="a UTF-8 file of texts to classify, one a line")
    add_flip_average_override(predict)
    add_json_argument(predict)
    return predict


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs ``arnn predict``; prints and returns one record per image or text."""
    from arnn_tf.cli.predictions import prediction_record, print_predictions
    from arnn_tf.programs.answers import predict_named
    from arnn_tf.programs.saved import SavedProgram

    saved = with_flip_average(SavedProgram.load(args.program), args.flip_average)
    texts = list(args.text)
    if args.text_file:
        from arnn_tf.modalities.text.task import read_lines

        texts += read_lines(args.text_file)
    if bool(texts) == bool(args.images):
        raise ValueError("give image files, or --text/--text-file, not both")
    given = "text" if texts else "image"
    inputs = texts or args.images
    probabilities, names = predict_named(saved, given, inputs)
    predictions = [
        prediction_record(x, int(row.argmax()), names[int(row.argmax())], row, given)
        for x, row in zip(inputs, probabilities)
    ]
    print_predictions(predictions, args.json)
    return predictions
