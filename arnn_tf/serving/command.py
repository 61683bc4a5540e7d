"""The ``arnn query`` command: parsed arguments in, printed and returned predictions out."""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.predictions import prediction_record, print_predictions
from arnn_tf.serving.grpc_client import GrpcClient
from arnn_tf.serving.inputs import image_inputs, signature_input
from arnn_tf.serving.rest_client import RestClient


def query_command(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs ``arnn query``; prints and returns one result per image.

    Two server round trips: one for the signature's input (from the metadata), one for all
    the images together.
    """
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
