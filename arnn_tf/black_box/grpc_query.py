"""`GrpcQuery`: a query function answered by a TensorFlow Serving model server over gRPC.

The same contract as `arnn_tf.black_box.RestQuery`, over TF Serving's gRPC ``Predict``
(`arnn_tf.serving.GrpcClient`: timeouts, retries with backoff): frames go out as one float32
tensor per request (``frames``, the input of the model `arnn export --backbone` writes) rather
than JSON, so requests are about five times smaller; the logits come back from its ``logits``
output (or its only output). Whatever goes wrong becomes a `QueryError`, raised before
anything learns from the answer. Needs ``tensorflow-serving-api`` (the ``serving`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arnn_tf.black_box.queries import QueryError, ServedQuery
from arnn_tf.serving.retries import DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TIMEOUT

DEFAULT_GRPC_CHUNK = 64
"""Frames per request: 64 frames of 224 x 224 x 3 float32 are about 38 MB, under the
client's 64 MB message limit."""
FRAMES_INPUT = "frames"
"""The input name of the backbone export's signature (`arnn_tf.export.backbone.FRAMES`)."""


class GrpcQuery(ServedQuery):
    """A `QueryFunction` over TF Serving's gRPC ``Predict``, counting the frames answered.

    ``target`` is ``host:port`` (TF Serving's gRPC port is 8500); ``queries`` counts the frames
    of the requests the server answered, ``requests`` the answered requests.
    """

    def __init__(
        self,
        target: str,
        model_name: str,
        signature: str = "serving_default",
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        *,
        version: int | None = None,
        classes: int = 1000,
        frame_size: int | None = None,
        chunk: int = DEFAULT_GRPC_CHUNK,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        from arnn_tf.serving.grpc_client import GrpcClient

        super().__init__(classes, frame_size, chunk)
        self.client = GrpcClient(target, timeout=timeout, retries=retries, backoff=backoff)
        self.model_name, self.signature, self.version = model_name, signature, version

    def send(self, frames: np.ndarray) -> dict[str, Any]:
        """One ``Predict`` request: the frames as one float32 tensor."""
        return self.client.predict(
            self.model_name,
            {FRAMES_INPUT: frames.astype("float32")},
            signature=self.signature,
            version=self.version,
        )

    def logits(self, outputs: dict[str, Any]) -> Any:
        """The ``logits`` output, or the only one."""
        if "logits" in outputs:
            return outputs["logits"]
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        raise QueryError(f"{self.client.target} answered outputs {sorted(outputs)}, not 'logits'")
