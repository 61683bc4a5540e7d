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
    from arnn_tf.cli.predictions import print_predictions
    from arnn_tf.programs.saved import SavedProgram

    saved = with_flip_average(SavedProgram.load(args.program), args.flip_average)
    if saved.modality not in _PREDICTIONS:
        raise ValueError(
            f"the program of task {saved.task_name!r} has parts with inputs of their own; "
            "export it and ask each part's signature (arnn export)"
        )
    texts = list(args.text)
    if args.text_file:
        from arnn_tf.modalities.text.task import read_lines

        texts += read_lines(args.text_file)
    if bool(texts) == bool(args.images):
        raise ValueError("give image files, or --text/--text-file, not both")
    given = "text" if texts else "image"
    if given != saved.modality:
        raise ValueError(
            f"{saved.task_name!r} is a program for {saved.modality} inputs, not {given}"
        )
    predictions = _PREDICTIONS[saved.modality](saved, texts or args.images)
    print_predictions(predictions, args.json)
    return predictions


def _image_predictions(saved: Any, paths: list[str]) -> list[dict[str, Any]]:
    from arnn_tf.cli.predictions import prediction_record
    from arnn_tf.modalities.image.files import read_images

    height, width, channels = saved.task_image_shape
    images = read_images(paths, (height, width), channels)
    probabilities = saved.build_model().predict(images, verbose=0)
    return [
        prediction_record(path, int(row.argmax()), saved.class_names[int(row.argmax())], row)
        for path, row in zip(paths, probabilities)
    ]


def _text_predictions(saved: Any, texts: list[str]) -> list[dict[str, Any]]:
    from arnn_tf.cli.predictions import prediction_record
    from arnn_tf.modalities.text.model import text_probabilities
    from arnn_tf.modalities.text.task import input_vectorizer

    vectorizer = input_vectorizer(saved.input_state)
    probabilities = text_probabilities(saved.build_model(), vectorizer, texts)
    return [
        prediction_record(
            text, int(row.argmax()), saved.class_names[int(row.argmax())], row, "text"
        )
        for text, row in zip(texts, probabilities)
    ]


_PREDICTIONS = {"image": _image_predictions, "text": _text_predictions}
"""How a program of each modality classifies what the command line gives it."""
