"""A client for TF Serving's REST API, with the standard library only.

It speaks ``/v1/models/NAME[/versions/N]:predict`` and ``.../metadata`` and answers in the
same shapes as `GrpcClient`, so callers can switch protocols without other changes.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
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


class RestClient:
    """TF Serving's REST API at ``url`` (e.g. ``http://localhost:8501``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        self.url = url.rstrip("/")
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
        """Runs ``signature`` on ``inputs`` (the columnar "inputs" request format)."""
        body = {
            "signature_name": signature,
            "inputs": {k: _to_json(np.asarray(v)) for k, v in inputs.items()},
        }
        reply = self._request(model_path(model, version) + ":predict", body)
        outputs = reply["outputs"]
        if not isinstance(outputs, dict):  # a signature with one output answers with the bare value
            outputs = {"output": outputs}
        return {name: np.asarray(value) for name, value in outputs.items()}

    def metadata(self, model: str, *, version: int | None = None) -> dict[str, Any]:
        """The model's metadata, including ``metadata.signature_def.signature_def``."""
        return self._request(model_path(model, version) + "/metadata", None)

    def _request(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """GETs ``path`` (POSTs ``body`` when given) with retries; the JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        return json.loads(self.send(path, data))

    def send(self, path: str, data: bytes | None = None) -> bytes:
        """GETs ``path`` (POSTs ``data`` when given) with retries; the answer's raw bytes.

        Errors are ServingErrors (ServingTimeout for a timeout) naming the URL, after the
        retries that may help (connection failures and 5xx answers)."""
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        return with_retries(lambda: self._send(request), self.retries, self.backoff)

    def _send(self, request: urllib.request.Request) -> bytes:
        """One attempt; failures become ServingErrors saying whether a retry may help."""
        url = request.full_url
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            message = _error_message(error.read())
            raise ServingError(
                f"{url}: HTTP {error.code}: {message}", retryable=error.code >= 500
            ) from None
        except TimeoutError:
            raise ServingTimeout(f"{url}: no answer within {self.timeout} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise ServingTimeout(f"{url}: no answer within {self.timeout} s") from None
            raise ServingError(f"{url}: cannot connect ({error.reason})", retryable=True) from None
        except ConnectionError as error:
            raise ServingError(f"{url}: connection lost ({error})", retryable=True) from None


def model_path(model: str, version: int | None) -> str:
    """The REST path of ``model`` (its latest version when ``version`` is None)."""
    return f"/v1/models/{model}" + ("" if version is None else f"/versions/{int(version)}")


def _to_json(value: np.ndarray) -> Any:
    """REST JSON for one input: numbers as nested lists, bytes as ``{"b64": ...}`` objects."""
    if value.dtype == object or value.dtype.kind == "S":
        return [{"b64": base64.b64encode(bytes(v)).decode("ascii")} for v in value.reshape(-1)]
    return value.tolist()


def _error_message(body: bytes) -> str:
    """TF Serving's ``{"error": ...}`` text, or the start of the raw body."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip()[:200]
