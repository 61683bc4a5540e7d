"""Decoding encoded images inside the serving graph, safely.

The model server runs these ops on untrusted bytes with no arnn-tf code around them, so each
refusal must be an ``InvalidArgumentError`` that fails one request only and says why.
"""

from __future__ import annotations

import tensorflow as tf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IHDR = b"\x00\x00\x00\x0dIHDR"
"""What follows the signature in every PNG: the 13-byte IHDR chunk (width, height, ...)."""


def decode_image(
    data: tf.Tensor, index: tf.Tensor, shape: tuple[int, int, int], max_pixels: int
) -> tf.Tensor:
    """``image_bytes[index]``, one encoded JPEG/PNG, to uint8 pixels of ``shape``.

    The size is read from the header and checked before decoding, so a decompression bomb (a
    small file whose header claims a huge image) is refused without allocating its pixels.
    Refusals are InvalidArgumentErrors naming the input ("image_bytes[2]: ..."); pixel data
    cut short gets the decoder's own ("Invalid PNG data", "Invalid JPEG data"). Either fails
    that request only: the next one is served as usual.
    """
    height, width = header_size(data, index)
    too_large = tf.strings.format(
        "image_bytes[{}] is {} x {} pixels (height x width); "
        f"images may have at most {max_pixels} pixels",
        (index, height, width),
    )
    within_limit = tf.logical_and(
        tf.logical_and(height > 0, width > 0), height * width <= max_pixels
    )
    with tf.control_dependencies([tf.debugging.Assert(within_limit, [too_large])]):
        image = tf.io.decode_image(data, channels=shape[2], dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, shape[2]])
    resized = tf.image.resize(image, shape[:2], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def header_size(data: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(height, width) as int64 from the PNG IHDR or JPEG SOF header of ``image_bytes[index]``.

    Asserts the bytes start as a PNG (signature, then the IHDR chunk) or a JPEG does, so
    anything else is refused before a decoder sees it.
    """
    is_png = tf.logical_and(
        tf.strings.length(data) >= 24,
        tf.equal(tf.strings.substr(data, 0, 16), PNG_SIGNATURE + PNG_IHDR),
    )
    is_jpeg = tf.io.is_jpeg(data)
    not_an_image = tf.strings.format(
        "image_bytes[{}]: not a JPEG or PNG image (undecodable or truncated bytes)", index
    )
    check = tf.debugging.Assert(tf.logical_or(is_png, is_jpeg), [not_an_image])

    def png_size() -> tf.Tensor:  # IHDR data: width, height as 4-byte big-endian unsigned ints
        header = tf.io.decode_raw(tf.strings.substr(data, 16, 8), tf.uint8)
        digits = tf.reshape(tf.cast(header, tf.int64), [2, 4])
        place_values = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
        width_height = tf.reduce_sum(digits * place_values, 1)
        return tf.reverse(width_height, [0])

    def jpeg_size() -> tf.Tensor:
        return tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)

    with tf.control_dependencies([check]):
        size = tf.cond(is_png, png_size, jpeg_size)
    return size[0], size[1]
