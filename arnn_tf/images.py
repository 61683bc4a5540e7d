"""Reading image files from the command line, with errors that name the file."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageReadError(ValueError):
    """An image file is missing, unreadable or corrupt."""


def read_image(path: str | os.PathLike[str], size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """Decodes ``path`` to a uint8 array of shape (height, width, channels), resized to ``size``.

    ``size`` is (height, width); images of any size and mode (grayscale, palette, RGBA) are
    converted, so a user can point at whatever files they have.
    """
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageReadError(f"{path}: not a readable image ({error})") from None
    return pixels.reshape(size[0], size[1], channels)


def read_images(paths: Sequence[str | os.PathLike[str]], size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """A batch of `read_image` results, in argument order."""
    if not paths:
        raise ImageReadError("no image files given")
    return np.stack([read_image(path, size, channels) for path in paths])
