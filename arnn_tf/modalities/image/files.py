"""Reading image files, with one-line errors that name the file.

Used for files on disk (`arnn predict`, `arnn classify`, a concealment host photo) and for the
encoded bytes of `folder:` tasks. A file that is missing, not an image, truncated or corrupt,
or that claims more than `MAX_IMAGE_PIXELS` pixels (a decompression bomb: a few bytes whose
header promises gigabytes of pixels) raises `ImageReadError`, a ValueError whose message is
one line starting with the file's name. The size is checked from the header, before any
pixel is decoded.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from typing import IO, Sequence, TypeAlias

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_PIXELS = 8192 * 8192
"""Largest image read, width x height: 67 megapixels (about 200 MB as RGB), more than any camera
photo of a usual size; PIL's own decompression-bomb checks never come into play below it."""

_PIL_WARNINGS = threading.Lock()
"""Serializes `warnings.catch_warnings` (process-wide state) across tf.data's decoding threads."""


class ImageReadError(ValueError):
    """An image file is missing, unreadable, corrupt or too large."""


Source: TypeAlias = "str | os.PathLike[str] | IO[bytes]"
"""A path or an open binary file."""


def open_image(source: Source, name: str, channels: int = 3) -> Image.Image:
    """Decodes ``source`` (a path or a binary file) to a PIL image of mode "L" (1 channel) or "RGB".

    Any size, mode (grayscale, palette, RGBA) and format PIL reads is accepted, up to
    `MAX_IMAGE_PIXELS`; anything else raises `ImageReadError` naming ``name``.
    """
    image = _open_within_limit(source, name)
    try:
        with image:
            return image.convert("L" if channels == 1 else "RGB")
    except Exception as error:  # PIL raises OSError, SyntaxError, EOFError, ... for broken files
        raise _unreadable(name, error) from None


def _open_within_limit(source: Source, name: str) -> Image.Image:
    """`Image.open` (which reads the header only), refusing images over `MAX_IMAGE_PIXELS`.

    PIL warns (DecompressionBombWarning) above its own limit, higher than ours: silenced, as the
    image is refused here. PIL refuses at twice its limit, before the size can be read: the same
    `ImageReadError`, with the pixel count instead of width x height.
    """
    try:
        with _PIL_WARNINGS, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
    except Image.DecompressionBombError as error:
        claimed = re.search(r"(\d+) pixels", str(error))  # "Image size (N pixels) exceeds ..."
        raise _too_large(name, claimed[1] if claimed else "too many") from None
    except FileNotFoundError:
        raise ImageReadError(f"{name}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a readable image (unknown image format)") from None
    except Exception as error:
        raise _unreadable(name, error) from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise _too_large(name, f"{width} x {height}")
    return image


def _too_large(name: str, claimed: str) -> ImageReadError:
    return ImageReadError(
        f"{name}: the image claims {claimed} pixels, more than the "
        f"{MAX_IMAGE_PIXELS} allowed (a corrupt file or a decompression bomb)"
    )


def _unreadable(name: str, error: Exception) -> ImageReadError:
    detail = " ".join(str(error).split()) or type(error).__name__
    return ImageReadError(f"{name}: not a readable image ({detail})")


def resized_pixels(image: Image.Image, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """``image`` as uint8 (height, width, channels), resized (bilinear) to ``size`` (h, w)."""
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(size[0], size[1], channels)


def read_image(
    path: str | os.PathLike[str], size: tuple[int, int], channels: int = 3
) -> np.ndarray:
    """Decodes ``path`` to a uint8 array of shape (height, width, channels), resized to ``size``.

    ``size`` is (height, width); images of any size (up to `MAX_IMAGE_PIXELS`) and mode
    (grayscale, palette, RGBA) are converted, so a user can point at whatever files they have.
    """
    return resized_pixels(open_image(path, str(path), channels), size, channels)


def read_images(
    paths: Sequence[str | os.PathLike[str]], size: tuple[int, int], channels: int = 3
) -> np.ndarray:
    """A batch of `read_image` results, in argument order."""
    if not paths:
        raise ImageReadError("no image files given")
    return np.stack([read_image(path, size, channels) for path in paths])


def image_read_error_in(error: BaseException) -> ImageReadError | None:
    """The `ImageReadError` behind ``error``, which may be a TensorFlow op error, or None.

    An error raised while tf.data decodes a `folder:` task's images (inside `tf.numpy_function`)
    reaches the caller as an InvalidArgumentError whose message holds "ImageReadError: MESSAGE"
    among graph details and a traceback; this recovers the first such one-line MESSAGE.
    """
    if isinstance(error, ImageReadError):
        return error
    found = re.search(r"\bImageReadError: (.+)", str(getattr(error, "message", error)))
    return ImageReadError(found[1]) if found else None
