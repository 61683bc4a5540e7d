"""``arnn query``: image files classified by a TensorFlow Serving model server."""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.cli.arguments import non_negative_int, positive_float, positive_int
from arnn_tf.cli.commands.options import add_json_argument
from arnn_tf.serving.retries import DEFAULT_RETRIES, DEFAULT_TIMEOUT


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn query`` to the sub-parsers ``commands``."""
    parser = commands.add_parser(
        "query", help="classify image files with a TensorFlow Serving model server"
    )
    parser.add_argument("images", nargs="+")
    parser.add_argument(
        "--url",
        default="http://localhost:8501",
        help="REST base URL, or host:port of the gRPC API with --grpc "
        "(default: http://localhost:8501)",
    )
    parser.add_argument("--grpc", action="store_true", help="use gRPC (needs the serving extra)")
    parser.add_argument(
        "--model", default="arnn", help="the model's name on the server (default: arnn)"
    )
    parser.add_argument(
        "--version", type=positive_int, help="a model version (default: the server's latest)"
    )
    parser.add_argument(
        "--signature",
        default="predict_bytes",
        help="string-input signatures get the files' bytes, uint8 ones decoded pixels "
        "(default: predict_bytes)",
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=DEFAULT_TIMEOUT, help="seconds per request"
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        default=DEFAULT_RETRIES,
        help="retries on connection errors and 5xx",
    )
    add_json_argument(parser)
    return parser


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs ``arnn query``; prints and returns one result per image.

    Two server round trips: one for the signature's input (from the metadata), one for all
    the images together.
    """
    from arnn_tf.cli.predictions import prediction_record, print_predictions
    from arnn_tf.serving import GrpcClient, RestClient, image_inputs, signature_input

    client_type = GrpcClient if args.grpc else RestClient
    client = client_type(args.url, timeout=args.timeout, retries=args.retries)
    metadata = client.metadata(args.model, version=args.version)
    name, dtype, shape = signature_input(metadata, args.signature)
    inputs = image_inputs(args.images, dtype, shape)
    outputs = client.predict(
        args.model, {name: inputs}, signature=args.signature, version=args.version
    )
    results = [
        prediction_record(path, class_id, class_name, probabilities)
        for path, probabilities, class_id, class_name in zip(
            args.images, outputs["probabilities"], outputs["class_ids"], outputs["class_names"]
        )
    ]
    print_predictions(results, args.json)
    return results
