"""The warm-up requests TF Serving replays when it loads a version.

Encoded by hand (protobuf wire format) so exporting needs no ``tensorflow-serving-api``,
which pins the full TensorFlow wheel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

WARMUP_FILE = "tf_serving_warmup_requests"
"""TF Serving replays the PredictionLog records in ``assets.extra/`` of this name at load time."""


def write_warmup(path: Path, model_name: str, requests: dict[str, dict[str, np.ndarray]]) -> None:
    """One PredictionLog per signature, so the server runs every graph before real traffic.

    ``requests`` maps each signature name to its inputs by name (batch 1 is enough).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests.items():
            writer.write(prediction_log_bytes(model_name, signature, inputs))


def prediction_log_bytes(
    model_name: str, signature_name: str, inputs: dict[str, np.ndarray]
) -> bytes:
    """A serialized ``tensorflow.serving.PredictionLog`` holding one PredictRequest.

    Field numbers are those of ``prediction_log.proto`` (predict_log = 6), ``predict.proto``
    (request = 1; model_spec = 1, inputs = 2) and ``model.proto`` (name = 1,
    signature_name = 3); tests parse the result with the real classes.
    """
    model_spec = _field(1, model_name.encode()) + _field(3, signature_name.encode())
    request = _field(1, model_spec)
    for key, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _field(2, _field(1, key.encode()) + _field(2, tensor))
    return _field(6, _field(1, request))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    """``value`` as a protobuf varint: 7 bits a byte, low bits first, high bit = more follow."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)
