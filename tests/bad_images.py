"""Broken image files for the tests: decompression bombs, truncated files and garbage bytes."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

GARBAGE = b"these bytes are not an image, whatever the file is called"


def encoded(pixels: np.ndarray, image_format: str) -> bytes:
    """``pixels`` (uint8, height x width x channels) as a PNG or JPEG file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(buffer, image_format)
    return buffer.getvalue()


def noise(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """Random RGB pixels: they compress badly, so half of the file is half of the image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid 1 x 1 PNG whose IHDR header (with a correct CRC) claims ``width`` x ``height``."""
    data = bytearray(encoded(np.zeros((1, 1, 3), np.uint8), "PNG"))
    # Signature (8 bytes), then the IHDR chunk: length (4), b"IHDR" (4), width, height (4 each),
    # 5 more header bytes, and the CRC (4) of the chunk's type and data.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid 8 x 8 baseline JPEG whose frame header (SOF0) claims ``width`` x ``height``.

    The default stays under 65500, the largest side libjpeg itself accepts.
    """
    data = bytearray(encoded(np.zeros((8, 8, 3), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")  # marker, length (2), precision (1), height, width (2 each)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def truncated(image_format: str) -> bytes:
    """The first half of a real 64 x 64 PNG or JPEG file."""
    data = encoded(noise(), image_format)
    return data[: len(data) // 2]


BAD_FILES = {
    "bomb.png": png_bomb(),
    "bomb.jpg": jpeg_bomb(),
    "truncated.png": truncated("PNG"),
    "truncated.jpg": truncated("JPEG"),
    "garbage.png": GARBAGE,
}
"""One of each kind of broken file, by a file name that says which it is."""
