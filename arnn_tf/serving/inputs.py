"""Turning image files into what a signature's one input wants, read from its metadata."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np


def signature_input(metadata: dict[str, Any], signature: str) -> tuple[str, str, list[int]]:
    """(input name, dtype such as "DT_UINT8", shape, -1 for unknown) of a one-input signature."""
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    if signature not in signatures:
        raise ValueError(
            f"the model has no signature {signature!r}; it has {', '.join(sorted(signatures))}"
        )
    inputs = signatures[signature]["inputs"]
    if len(inputs) != 1:
        raise ValueError(
            f"signature {signature!r} takes {len(inputs)} inputs "
            f"({', '.join(sorted(inputs))}); image files can be sent only to a "
            "signature with one input"
        )
    ((name, info),) = inputs.items()
    dims = info.get("tensor_shape", {}).get("dim", [])
    return name, info["dtype"], [int(d.get("size", -1)) for d in dims]


def image_inputs(
    paths: Sequence[str | os.PathLike[str]], dtype: str, shape: Sequence[int]
) -> np.ndarray:
    """Image files as a signature wants them: their bytes for a string input, else uint8 pixels.

    Pixels are decoded and resized here, to the input's height, width and channels.
    """
    if dtype == "DT_STRING":
        files = []
        for path in paths:
            with open(path, "rb") as f:
                files.append(f.read())
        return np.array(files, dtype=object)
    if dtype != "DT_UINT8" or len(shape) != 4 or min(shape[1:]) < 1:
        raise ValueError(
            f"cannot send image files to an input of type {dtype} and shape {list(shape)}"
        )
    from arnn_tf.modalities.image.files import read_images

    return read_images(paths, (shape[1], shape[2]), shape[3])
