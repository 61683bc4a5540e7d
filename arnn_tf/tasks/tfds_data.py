"""Data sets of the TFDS catalogue, whatever they hold: preparing one (downloading it, or
failing at once offline) and naming its splits. Each modality reads its own kind of data set
(`arnn_tf.modalities.image.datasets`, `arnn_tf.modalities.text.datasets`)."""

from __future__ import annotations

import socket
from typing import Any

TFDS_TEST_SPLITS = ("test", "validation")
"""A TFDS data set's test split: the first of these it has."""
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
"""Where TFDS fetches prepared data sets (and many sources) from; probed before a download."""


def pick_test_split(available: list[str], candidates: tuple[str, ...], source: str) -> str:
    """The first of `candidates` present in `available`, or a ValueError listing what was found."""
    for candidate in candidates:
        if candidate in available:
            return candidate
    raise ValueError(
        f"{source} has no test split: looked for {list(candidates)}, found {sorted(available)}"
    )


def unreachable_download_host(timeout: float = 5.0) -> str | None:
    """None when `DOWNLOAD_HOST` accepts a connection, else why not.

    Asked before a download because TFDS itself retries a failing one for minutes: offline,
    a task should fail at once with a message that says what to use instead.
    """
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
    except OSError as error:
        return f"no connection to {DOWNLOAD_HOST[0]}: {error}"
    return None


def prepared_splits(builder: Any, name: str) -> dict[str, str]:
    """Prepares ``builder``'s data set (downloading it, or failing at once offline) and names
    its "train" and "test" splits."""
    if not builder.is_prepared():
        unreachable = unreachable_download_host()
        if unreachable is not None:
            raise ValueError(
                f"TFDS data set {name!r} is not prepared in {builder.data_dir} and cannot be "
                f"downloaded from here ({unreachable}); prepare it on a machine with internet "
                "and use its data directory, or use a folder copy ('folder:PATH' for images, "
                "'text:PATH' for texts)"
            )
    builder.download_and_prepare()
    # Splits are only known once prepared; "test" is the usual name when none are recorded.
    available = list(builder.info.splits.keys())
    test_split = (
        pick_test_split(available, TFDS_TEST_SPLITS, f"TFDS data set {name!r}")
        if available
        else "test"
    )
    return {"train": "train", "test": test_split}
