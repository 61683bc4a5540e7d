"""TEST DOUBLES ONLY: stand-ins for TensorFlow Serving's REST and gRPC APIs, for testing arnn_tf.serving.

They implement just what the client uses (``:predict`` with the columnar "inputs" or the row
"instances" format, ``/metadata``; gRPC ``Predict`` and ``GetModelMetadata``) on top of an
exported SavedModel loaded with ``tf.saved_model.load``, on 127.0.0.1 with an ephemeral port.
They can fail the first requests with 503/UNAVAILABLE and delay answers, to test retries and
timeouts. They are not a model server: deploy exports with ``tensorflow/serving``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2


class ExportedModel:
    """One export version folder: runs signatures and describes them as TF Serving's metadata does."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.version = int(path.name)
        self.loaded = tf.saved_model.load(str(path))
        saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        signatures = {k: v for k, v in saved_model.meta_graphs[0].signature_def.items() if not k.startswith("__")}
        self.signature_map = meta_graph_pb2.MetaGraphDef(signature_def=signatures)

    def metadata_json(self) -> dict[str, Any]:
        signature_def = json_format.MessageToDict(self.signature_map, preserving_proto_field_name=True)
        return {"model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
                "metadata": {"signature_def": signature_def}}

    def input_dtype(self, signature: str, name: str) -> str:
        return tf.dtypes.as_dtype(self.signature_map.signature_def[signature].inputs[name].dtype).name

    def predict(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raises KeyError for an unknown signature, InvalidArgumentError/ValueError for bad inputs."""
        function = self.loaded.signatures[signature]
        return {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


class _Faults:
    """Shared fault injection: fail the first ``fail_first`` requests, then delay each by ``delay`` seconds."""

    def __init__(self) -> None:
        self.fail_first = 0
        self.delay = 0.0
        self.requests = 0
        self.lock = threading.Lock()

    def should_fail(self) -> bool:
        with self.lock:
            self.requests += 1
            return self.requests <= self.fail_first


class RestDouble:
    """A stand-in for TF Serving's REST API (port 8501 in production) serving one model."""

    PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict|/metadata)$")

    def __init__(self, model: ExportedModel) -> None:
        self.model = model
        self.faults = _Faults()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double._handle(self, None)

            def do_POST(self) -> None:
                double._handle(self, json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        if self.faults.should_fail():
            return self._reply(handler, 503, {"error": "test double: unavailable"})
        time.sleep(self.faults.delay)
        match = self.PATH.match(handler.path)
        if not match or match["name"] != self.model.name or (
                match["version"] and int(match["version"]) != self.model.version):
            return self._reply(handler, 404, {"error": f"Servable not found for request: {handler.path}"})
        if match["verb"] == "/metadata":
            return self._reply(handler, 200, self.model.metadata_json())
        if body is None:
            return self._reply(handler, 400, {"error": "predict needs a POST body"})
        signature = body.get("signature_name", "serving_default")
        try:
            rows = "instances" in body
            inputs = self._inputs(signature, body["instances"] if rows else body["inputs"])
            outputs = self.model.predict(signature, inputs)
        except (KeyError, ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
            return self._reply(handler, 400, {"error": getattr(error, "message", str(error))})
        jsonable = {k: [x.decode() if isinstance(x, bytes) else x for x in v.tolist()] for k, v in outputs.items()}
        if rows:
            count = len(next(iter(jsonable.values())))
            return self._reply(handler, 200, {"predictions": [{k: v[i] for k, v in jsonable.items()}
                                                              for i in range(count)]})
        self._reply(handler, 200, {"outputs": jsonable})

    def _inputs(self, signature: str, value: Any) -> dict[str, np.ndarray]:
        names = list(self.model.signature_map.signature_def[signature].inputs)
        named = value if isinstance(value, dict) else {names[0]: value}
        arrays = {}
        for name, data in named.items():
            dtype = self.model.input_dtype(signature, name)
            if dtype == "string":
                arrays[name] = np.array([base64.b64decode(d["b64"]) if isinstance(d, dict) else d.encode()
                                         for d in data], dtype=object)
            else:
                array = np.asarray(data)
                if array.dtype.kind == "f" and dtype != "float32":
                    raise ValueError(f"JSON Value: {array.flat[0]} not {dtype}")
                arrays[name] = array.astype(dtype)
        return arrays

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout tests)


def grpc_double(model: ExportedModel) -> Any:
    """A stand-in for TF Serving's gRPC PredictionService (port 8500 in production); needs tensorflow-serving-api.

    Returns an object with ``target`` ("127.0.0.1:PORT"), ``faults`` and ``close()``.
    """
    import grpc
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    faults = _Faults()

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def _check(self, context: Any, spec: Any) -> None:
            if faults.should_fail():
                context.abort(grpc.StatusCode.UNAVAILABLE, "test double: unavailable")
            time.sleep(faults.delay)
            if spec.name != model.name or (spec.HasField("version") and spec.version.value != model.version):
                context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")

        def Predict(self, request: Any, context: Any) -> Any:
            self._check(context, request.model_spec)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                outputs = model.predict(request.model_spec.signature_name or "serving_default", inputs)
            except (KeyError, ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, getattr(error, "message", str(error)))
            reply = predict_pb2.PredictResponse()
            reply.model_spec.name = model.name
            for name, value in outputs.items():
                reply.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return reply

        def GetModelMetadata(self, request: Any, context: Any) -> Any:
            self._check(context, request.model_spec)
            reply = get_model_metadata_pb2.GetModelMetadataResponse()
            reply.model_spec.name = model.name
            reply.model_spec.version.value = model.version
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for name, signature in model.signature_map.signature_def.items():
                signature_map.signature_def[name].CopyFrom(signature)
            reply.metadata["signature_def"].Pack(signature_map)
            return reply

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    class Handle:
        target = f"127.0.0.1:{port}"

        def __init__(self) -> None:
            self.faults = faults

        def close(self) -> None:
            server.stop(grace=None)

    return Handle()
