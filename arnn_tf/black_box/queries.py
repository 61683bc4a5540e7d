"""Query functions: all a black-box trainer may ask of the frozen model.

A `QueryFunction` maps a batch of frames ``[k, n, n, 3]``, float32 in [-1, 1] (the backbone's
input), to the model's **logits** ``[k, classes]`` (1000 for ImageNet) as a numpy array. It
gives no weights and no gradients, so anything that answers that call can be reprogrammed:
`LocalQuery` answers with an in-process Keras backbone; a client for TF Serving's
``:predict`` fits the same type. A model that ends in a softmax answers with probabilities;
`log_probabilities` turns such a function into one answering log-probabilities, which equal
the logits up to one constant per frame, a constant that fixed label maps ignore (a learned
linear map sees it, and learns with it).

Answers are checked (`checked_answer`) before anything learns from them, so a wrongly shaped
or non-finite answer stops training with a `QueryError` and changes nothing.
Written with numpy and `keras.ops` only, so it works on any Keras backend.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

import keras
import numpy as np

from arnn_tf.serving.retries import ServingError

QueryFunction = Callable[[np.ndarray], np.ndarray]
"""Frames ``[k, n, n, 3]`` float32 in [-1, 1] -> logits ``[k, classes]``."""

FRAME_RANGE_TOLERANCE = 1e-5
"""How far outside [-1, 1] a frame's pixels may lie (float rounding in the program's sum)."""


class QueryError(ValueError):
    """Frames or an answer a query cannot use: wrong shape, non-finite or out-of-range values."""


def check_frames(frames: np.ndarray, frame_size: int | None = None) -> np.ndarray:
    """``frames`` as float32 ``[k, n, n, 3]`` with finite pixels in [-1, 1]; QueryError if not.

    Checked before they are sent, so a bad request costs no query.
    """
    frames = np.asarray(frames, dtype="float32")
    size = frames.shape[1] if frame_size is None and frames.ndim == 4 else frame_size
    if frames.ndim != 4 or frames.shape[1:] != (size, size, 3) or not len(frames):
        raise QueryError(
            f"a query takes a batch of {size}x{size}x3 frames, [k, {size}, {size}, 3] "
            f"with k >= 1; got shape {frames.shape}"
        )
    if not np.all(np.isfinite(frames)) or np.abs(frames).max() > 1 + FRAME_RANGE_TOLERANCE:
        raise QueryError(
            "frames must hold finite pixel values in [-1, 1]; got values from "
            f"{np.nanmin(frames)} to {np.nanmax(frames)}"
        )
    return frames


def checked_answer(answer: np.ndarray, frames: int, classes: int) -> np.ndarray:
    """``answer`` as float32 ``[frames, classes]`` logits; QueryError naming what is wrong.

    A trainer calls this on every answer before it learns from it, whatever function gave it.
    """
    try:
        answer = np.asarray(answer, dtype="float32")
    except (TypeError, ValueError) as error:
        raise QueryError(
            f"the query function's answer is not an array of numbers: {error}"
        ) from None
    if answer.shape != (frames, classes):
        raise QueryError(
            f"the query function answered shape {answer.shape} for {frames} frames; "
            f"expected ({frames}, {classes}): one row of {classes} logits per frame"
        )
    bad = ~np.isfinite(answer)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise QueryError(
            f"the query function's answer holds NaN or infinite values ("
            f"{int(bad.sum())} of {bad.size}) in {len(rows)} of {frames} frames "
            f"(first: frame {rows[0]}); nothing was learned from it"
        )
    return answer


class LocalQuery:
    """A `QueryFunction` over an in-process Keras backbone, counting the frames it answers.

    ``queries`` is the number of frames the backbone has answered, checked or not (each one
    cost a forward pass). Frames go through the backbone ``chunk`` at a time, in inference
    mode, so a large query does not need all its activations in memory at once.
    """

    def __init__(self, backbone: keras.Model, chunk: int = 128) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be a positive number of frames, got {chunk}")
        self.backbone = backbone
        self.frame_size = int(backbone.input_shape[1])
        self.classes = int(backbone.output_shape[-1])
        self.chunk = chunk
        self.queries = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames, self.frame_size)
        answers = []
        for start in range(0, len(frames), self.chunk):
            part = frames[start : start + self.chunk]
            answers.append(keras.ops.convert_to_numpy(self.backbone.predict_on_batch(part)))
            self.queries += len(part)
        return checked_answer(np.concatenate(answers), len(frames), self.classes)


def log_probabilities(query: QueryFunction) -> QueryFunction:
    """A query function answering ``log(p)`` for one that answers probabilities ``p``."""

    def ask(frames: np.ndarray) -> np.ndarray:
        probabilities = np.asarray(query(frames), dtype="float32")
        return np.log(np.maximum(probabilities, np.finfo("float32").tiny))

    return ask


class ServedQuery(abc.ABC):
    """A `QueryFunction` asking a model server in requests of ``chunk`` frames at most,
    counting the frames (``queries``) and requests (``requests``) the server answered.

    Subclasses send one request (`send`); whatever goes wrong there, a refusal or an answer
    that is not logits of the right shape, becomes a `QueryError` before anything learns.
    """

    def __init__(self, classes: int, frame_size: int | None, chunk: int) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be a positive number of frames, got {chunk}")
        self.classes, self.frame_size, self.chunk = classes, frame_size, chunk
        self.queries = 0
        self.requests = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames, self.frame_size)
        answers = [
            self._ask(frames[start : start + self.chunk])
            for start in range(0, len(frames), self.chunk)
        ]
        return np.concatenate(answers)

    def _ask(self, frames: np.ndarray) -> np.ndarray:
        """One request: the checked logits ``[len(frames), classes]``."""
        try:
            reply = self.send(frames)
        except ServingError as error:
            raise QueryError(f"the model server did not answer the query: {error}") from None
        self.requests += 1
        self.queries += len(frames)
        return checked_answer(self.logits(reply), len(frames), self.classes)

    @abc.abstractmethod
    def send(self, frames: np.ndarray) -> Any:
        """The server's reply to one request for ``frames``; ServingError if none came."""

    @abc.abstractmethod
    def logits(self, reply: Any) -> Any:
        """The logits in a reply (QueryError if there are none)."""
