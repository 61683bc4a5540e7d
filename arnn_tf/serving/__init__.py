"""Clients for a TensorFlow Serving model server running an arnn-tf export.

`RestClient` (`rest_client`) speaks the REST API with the standard library only;
`GrpcClient` (`grpc_client`) speaks the gRPC PredictionService through
``tensorflow-serving-api`` (the ``serving`` extra), imported only when used. Both return the
same shapes: ``predict`` gives ``{output name: numpy array}`` and ``metadata`` the REST JSON
form of the model's signature map.

Requests time out, and retry a bounded number of times with exponential backoff, only when a
retry can help (`retries`). `inputs` turns image files into a signature's input; the
``arnn query`` command is `arnn_tf.cli.commands.query`.
"""

from arnn_tf.serving.grpc_client import GrpcClient
from arnn_tf.serving.inputs import image_inputs, signature_input
from arnn_tf.serving.rest_client import RestClient
from arnn_tf.serving.retries import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_BACKOFF,
    ServingError,
    ServingTimeout,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_BACKOFF",
    "GrpcClient",
    "RestClient",
    "ServingError",
    "ServingTimeout",
    "image_inputs",
    "signature_input",
]
