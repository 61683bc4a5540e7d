"""`RestQuery`: a query function answered by a TensorFlow Serving model server over REST.

It posts frames to ``URL/v1/models/NAME[/versions/N]:predict`` in the row format
(``{"signature_name": ..., "instances": [frame, ...]}``) and reads the logits from
``"predictions"``: the model `arnn export --backbone` writes (``frames`` in, ``logits`` out).
Requests carry ``chunk`` frames at most (JSON spells each pixel out, about 20 bytes), time
out after ``timeout`` seconds and retry connection errors and 5xx answers ``retries`` times
(`arnn_tf.serving.RestClient`). Whatever goes wrong, a refusal, an error status, an answer that
is not JSON logits of the right shape, becomes a `QueryError`, raised before anything learns
from the answer. Standard library and numpy only.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from arnn_tf.black_box.queries import QueryError, ServedQuery
from arnn_tf.serving.rest_client import RestClient, model_path
from arnn_tf.serving.retries import DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TIMEOUT

DEFAULT_CHUNK = 32
"""Frames per request: 32 frames of 224 x 224 x 3 are about 100 MB of JSON."""


class RestQuery(ServedQuery):
    """A `QueryFunction` over TF Serving's REST ``:predict``, counting the frames answered.

    ``queries`` counts the frames of the requests the server answered (whether or not the
    answer was usable: the server ran the model on them); ``requests`` the answered requests.
    """

    def __init__(
        self,
        url: str,
        model_name: str,
        signature: str = "serving_default",
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        *,
        version: int | None = None,
        classes: int = 1000,
        frame_size: int | None = None,
        chunk: int = DEFAULT_CHUNK,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__(classes, frame_size, chunk)
        self.client = RestClient(url, timeout=timeout, retries=retries, backoff=backoff)
        self.path = model_path(model_name, version) + ":predict"
        self.endpoint = self.client.url + self.path
        self.signature = signature

    def send(self, frames: np.ndarray) -> bytes:
        """One ``:predict`` request in the row format."""
        body = json.dumps({"signature_name": self.signature, "instances": frames.tolist()})
        return self.client.send(self.path, body.encode())

    def logits(self, reply: bytes) -> Any:
        """The ``predictions`` of a ``:predict`` answer: rows of logits, or rows of
        ``{"logits": row}`` when the signature has several outputs."""
        try:
            predictions = json.loads(reply)["predictions"]
        except (ValueError, KeyError, TypeError):
            start = reply[:80].decode(errors="replace")
            raise QueryError(
                f"{self.endpoint} answered something other than JSON predictions: {start!r}"
            ) from None
        if isinstance(predictions, list) and predictions and isinstance(predictions[0], dict):
            try:
                predictions = [row["logits"] for row in predictions]
            except (KeyError, TypeError):
                raise QueryError(
                    f"{self.endpoint} answered outputs {sorted(predictions[0])}, not 'logits'"
                ) from None
        return predictions
