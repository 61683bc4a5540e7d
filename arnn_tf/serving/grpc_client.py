"""A client for TF Serving's gRPC PredictionService.

It needs ``tensorflow-serving-api`` (the ``serving`` extra), imported only when a client is
made, so the REST client and exporting work without it. Answers have the same shapes as
`RestClient`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arnn_tf.serving.retries import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    ServingError,
    ServingTimeout,
    with_retries,
)

MISSING_STUBS = (
    "the gRPC client needs grpcio and tensorflow-serving-api: "
    "pip install 'arnn-tf[serving]' && pip install --no-deps tensorflow-serving-api "
    "(or use the REST client)"
)


class GrpcClient:
    """TF Serving's gRPC PredictionService at ``target`` (e.g. ``localhost:8500``)."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        try:
            import grpc
            from tensorflow_serving.apis import prediction_service_pb2_grpc
        except ImportError as error:
            raise ImportError(MISSING_STUBS) from error
        self._grpc = grpc
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self.channel = grpc.insecure_channel(target, options=options)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def predict(
        self,
        model: str,
        inputs: dict[str, np.ndarray],
        *,
        signature: str = "serving_default",
        version: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs ``signature`` on ``inputs``; string outputs come back as str, as REST's do."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, model, signature, version)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
        reply = self._call(self.stub.Predict, request)
        outputs = {name: tf.make_ndarray(proto) for name, proto in reply.outputs.items()}
        return {
            name: np.vectorize(bytes.decode, otypes=[str])(value)
            if value.dtype == object
            else value
            for name, value in outputs.items()
        }

    def metadata(self, model: str, *, version: int | None = None) -> dict[str, Any]:
        """The model's signature map, in the same JSON form as the REST API's metadata."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._model_spec(request.model_spec, model, None, version)
        reply = self._call(self.stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        reply.metadata["signature_def"].Unpack(signatures)
        return {
            "model_spec": json_format.MessageToDict(
                reply.model_spec, preserving_proto_field_name=True
            ),
            "metadata": {
                "signature_def": json_format.MessageToDict(
                    signatures, preserving_proto_field_name=True
                )
            },
        }

    def close(self) -> None:
        """Closes the channel (the client cannot be used afterwards)."""
        self.channel.close()

    @staticmethod
    def _model_spec(spec: Any, model: str, signature: str | None, version: int | None) -> None:
        """Fills a request's ModelSpec; unset fields mean the default signature, latest version."""
        spec.name = model
        if signature is not None:
            spec.signature_name = signature
        if version is not None:
            spec.version.value = int(version)

    def _call(self, method: Any, request: Any) -> Any:
        """Calls ``method`` with retries; RPC errors become ServingErrors."""
        grpc = self._grpc

        def once() -> Any:
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise ServingTimeout(
                        f"{self.target}: no answer within {self.timeout} s"
                    ) from None
                raise ServingError(
                    f"{self.target}: {code.name}: {error.details()}",
                    retryable=code == grpc.StatusCode.UNAVAILABLE,
                ) from None

        return with_retries(once, self.retries, self.backoff)
