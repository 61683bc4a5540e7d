"""Timeouts, the errors both clients raise, and bounded retries with exponential backoff.

A retry happens only when it can help: the server could not be reached, answered 5xx, or
(gRPC) said UNAVAILABLE. Bad requests and timeouts are raised at once, since sending the
same request again would fail or wait the same way.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 8.0

T = TypeVar("T")


class ServingError(RuntimeError):
    """The model server refused the request or could not be reached.

    ``retryable`` says whether trying again may help.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ServingTimeout(ServingError):
    """The server did not answer within the timeout."""


def with_retries(
    call: Callable[[], T], retries: int, backoff: float, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Runs ``call``, retrying retryable ServingErrors up to ``retries`` times.

    The waits double from ``backoff`` up to MAX_BACKOFF seconds, so a restarting server is
    given time without a dead one being waited on for long.
    """
    for attempt in range(retries + 1):
        try:
            return call()
        except ServingError as error:
            if not error.retryable or attempt == retries:
                raise
            sleep(min(backoff * 2**attempt, MAX_BACKOFF))
    raise AssertionError("unreachable")
