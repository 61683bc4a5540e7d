"""Clients for a TensorFlow Serving model server running an arnn-tf export.

`RestClient` speaks the REST API (``/v1/models/NAME[/versions/N]:predict`` and
``.../metadata``) with the standard library only; `GrpcClient` speaks the gRPC
PredictionService through ``tensorflow-serving-api`` (the ``serving`` extra), imported
only when used. Both return the same shapes: ``predict`` gives ``{output name: numpy
array}`` and ``metadata`` the REST JSON form of the model's signature map.

Requests time out, and retry a bounded number of times with exponential backoff, only
when a retry can help: the server could not be reached, answered 5xx, or (gRPC) said
UNAVAILABLE. Bad requests and timeouts are not retried.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from arnn_tf.predictions import prediction_record, print_predictions

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 8.0

T = TypeVar("T")


class ServingError(RuntimeError):
    """The model server refused the request or could not be reached; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ServingTimeout(ServingError):
    """The server did not answer within the timeout."""


def _with_retries(call: Callable[[], T], retries: int, backoff: float,
                  sleep: Callable[[float], None] = time.sleep) -> T:
    """Runs ``call``, retrying retryable ServingErrors up to ``retries`` times with doubling waits."""
    for attempt in range(retries + 1):
        try:
            return call()
        except ServingError as error:
            if not error.retryable or attempt == retries:
                raise
            sleep(min(backoff * 2**attempt, MAX_BACKOFF))
    raise AssertionError("unreachable")


def _model_path(model: str, version: int | None) -> str:
    return f"/v1/models/{model}" + ("" if version is None else f"/versions/{int(version)}")


def _to_json(value: np.ndarray) -> Any:
    """REST JSON for one input: numbers as nested lists, bytes as ``{"b64": ...}`` objects."""
    if value.dtype == object or value.dtype.kind == "S":
        return [{"b64": base64.b64encode(bytes(v)).decode("ascii")} for v in value.reshape(-1)]
    return value.tolist()


class RestClient:
    """TF Serving's REST API at ``url`` (e.g. ``http://localhost:8501``)."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def predict(self, model: str, inputs: dict[str, np.ndarray], *, signature: str = "serving_default",
                version: int | None = None) -> dict[str, np.ndarray]:
        """Runs ``signature`` on ``inputs`` (the columnar "inputs" request format)."""
        body = {"signature_name": signature, "inputs": {k: _to_json(np.asarray(v)) for k, v in inputs.items()}}
        reply = self._request(_model_path(model, version) + ":predict", body)
        outputs = reply["outputs"]
        if not isinstance(outputs, dict):  # a signature with one output answers with the bare value
            outputs = {"output": outputs}
        return {name: np.asarray(value) for name, value in outputs.items()}

    def metadata(self, model: str, *, version: int | None = None) -> dict[str, Any]:
        """The model's metadata, including ``metadata.signature_def.signature_def``."""
        return self._request(_model_path(model, version) + "/metadata", None)

    def _request(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        return _with_retries(lambda: self._send(request), self.retries, self.backoff)

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            message = _error_message(error.read())
            raise ServingError(f"{request.full_url}: HTTP {error.code}: {message}",
                               retryable=error.code >= 500) from None
        except TimeoutError:
            raise ServingTimeout(f"{request.full_url}: no answer within {self.timeout} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise ServingTimeout(f"{request.full_url}: no answer within {self.timeout} s") from None
            raise ServingError(f"{request.full_url}: cannot connect ({error.reason})", retryable=True) from None
        except ConnectionError as error:
            raise ServingError(f"{request.full_url}: connection lost ({error})", retryable=True) from None


def _error_message(body: bytes) -> str:
    """TF Serving's ``{"error": ...}`` text, or the raw body."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip()


class GrpcClient:
    """TF Serving's gRPC PredictionService at ``target`` (e.g. ``localhost:8500``); needs the ``serving`` extra."""

    def __init__(self, target: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, max_message_bytes: int = 64 * 1024 * 1024) -> None:
        try:
            import grpc
            from tensorflow_serving.apis import prediction_service_pb2_grpc
        except ImportError as error:
            raise ImportError("the gRPC client needs grpcio and tensorflow-serving-api: pip install 'arnn-tf[serving]' "
                              "&& pip install --no-deps tensorflow-serving-api (or use the REST client)") from error
        self._grpc = grpc
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        self.channel = grpc.insecure_channel(target, options=options)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def predict(self, model: str, inputs: dict[str, np.ndarray], *, signature: str = "serving_default",
                version: int | None = None) -> dict[str, np.ndarray]:
        """Runs ``signature`` on ``inputs``; string outputs come back as str."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, model, signature, version)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
        reply = self._call(self.stub.Predict, request)
        outputs = {name: tf.make_ndarray(proto) for name, proto in reply.outputs.items()}
        return {name: np.vectorize(bytes.decode, otypes=[str])(value) if value.dtype == object else value
                for name, value in outputs.items()}

    def metadata(self, model: str, *, version: int | None = None) -> dict[str, Any]:
        """The model's signature map, in the same JSON form as the REST API's metadata."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._model_spec(request.model_spec, model, None, version)
        reply = self._call(self.stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        reply.metadata["signature_def"].Unpack(signatures)
        return {"model_spec": json_format.MessageToDict(reply.model_spec, preserving_proto_field_name=True),
                "metadata": {"signature_def": json_format.MessageToDict(signatures, preserving_proto_field_name=True)}}

    def close(self) -> None:
        self.channel.close()

    @staticmethod
    def _model_spec(spec: Any, model: str, signature: str | None, version: int | None) -> None:
        spec.name = model
        if signature is not None:
            spec.signature_name = signature
        if version is not None:
            spec.version.value = int(version)

    def _call(self, method: Any, request: Any) -> Any:
        grpc = self._grpc

        def once() -> Any:
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise ServingTimeout(f"{self.target}: no answer within {self.timeout} s") from None
                raise ServingError(f"{self.target}: {code.name}: {error.details()}",
                                   retryable=code == grpc.StatusCode.UNAVAILABLE) from None

        return _with_retries(once, self.retries, self.backoff)


def signature_input(metadata: dict[str, Any], signature: str) -> tuple[str, str, list[int]]:
    """(input name, dtype such as "DT_UINT8", shape with -1 for unknown) of a one-input signature."""
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    if signature not in signatures:
        raise ValueError(f"the model has no signature {signature!r}; it has {', '.join(sorted(signatures))}")
    inputs = signatures[signature]["inputs"]
    if len(inputs) != 1:
        raise ValueError(f"signature {signature!r} takes {len(inputs)} inputs; arnn query sends one")
    (name, info), = inputs.items()
    dims = info.get("tensor_shape", {}).get("dim", [])
    return name, info["dtype"], [int(d.get("size", -1)) for d in dims]


def image_inputs(paths: Sequence[str | os.PathLike[str]], dtype: str, shape: Sequence[int]) -> np.ndarray:
    """What a signature wants for image files: their bytes for a string input, else decoded uint8 pixels."""
    if dtype == "DT_STRING":
        files = []
        for path in paths:
            with open(path, "rb") as f:
                files.append(f.read())
        return np.array(files, dtype=object)
    if dtype != "DT_UINT8" or len(shape) != 4 or min(shape[1:]) < 1:
        raise ValueError(f"cannot send image files to an input of type {dtype} and shape {list(shape)}")
    from arnn_tf.images import read_images

    return read_images(paths, (shape[1], shape[2]), shape[3])



def query_command(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs ``arnn query``: one server round trip for metadata, one for all images; prints and returns the results."""
    client_type = GrpcClient if args.grpc else RestClient
    client = client_type(args.url, timeout=args.timeout, retries=args.retries)
    name, dtype, shape = signature_input(client.metadata(args.model, version=args.version), args.signature)
    inputs = image_inputs(args.images, dtype, shape)
    outputs = client.predict(args.model, {name: inputs}, signature=args.signature, version=args.version)
    results = [prediction_record(path, class_id, class_name, probabilities)
               for path, probabilities, class_id, class_name in zip(
                   args.images, outputs["probabilities"], outputs["class_ids"], outputs["class_names"])]
    print_predictions(results, args.json)
    return results
