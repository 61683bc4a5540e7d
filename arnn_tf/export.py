"""Export saved programs as a TensorFlow Serving SavedModel.

The model server loads the export with no arnn-tf code, so everything a request needs is in
the graph: decoding and resizing encoded images, refusing bad input with a readable
``InvalidArgumentError`` (the server keeps serving), and the class names. Several programs
on the same backbone share one copy of its variables; each adds only its program ``W`` (a
concealed program also its host photo) and its label map's index vector.

Layout written (TF Serving's): ``BASE/N/saved_model.pb``, ``BASE/N/variables/`` and
``BASE/N/assets.extra/tf_serving_warmup_requests``. The version is written to a hidden
temporary folder next to it and renamed into place, so the server's version poller never
sees half an export.

Signatures, per program NAME: ``NAME`` (uint8 pixels ``images`` [batch, h, w, c]) and
``NAME_bytes`` (encoded JPEG/PNG ``image_bytes`` [batch]); with a single program also
``serving_default`` and ``predict_bytes``. All return ``probabilities`` (float32
[batch, classes]), ``class_ids`` (int64 [batch]) and ``class_names`` (string [batch]).

A program trained on combined tasks (``arnn train --task mnist+cifar10``) also gets, per
part PART, ``NAME_PART`` and ``NAME_PART_bytes``: the same inputs, on the same variables,
answering with that part's classes only (ids from 0 within the part, names without the
"PART/" prefix, probabilities renormalised over the part's classes; see `_part_probabilities`).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from arnn_tf.model import ReprogrammedModel, average_with_mirror
from arnn_tf.programs import SavedProgram
from arnn_tf.settings import DEFAULT_MAX_PIXELS  # about 50 MB of RGB pixels
from arnn_tf.tasks import short_task_name

WARMUP_FILE = "tf_serving_warmup_requests"
"""TF Serving replays the PredictionLog records in ``assets.extra/`` of this name at load time."""

SINGLE_PROGRAM_SIGNATURES = ("serving_default", "predict_bytes")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IHDR = b"\x00\x00\x00\x0dIHDR"
"""What follows the signature in every PNG: the 13-byte IHDR chunk (width, height, ...)."""


class ExportError(ValueError):
    """The programs cannot be exported together (names, backbones, versions)."""


def sanitize_name(name: str) -> str:
    """A signature/model-friendly name: lower-case letters, digits and underscores, not starting with a digit."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not cleaned:
        return "program"
    return f"p_{cleaned}" if cleaned[0].isdigit() else cleaned


def part_signature_name(program_name: str, part_name: str) -> str:
    """The pixel signature of one part of a multi-task program (its bytes signature adds ``_bytes``)."""
    return sanitize_name(f"{program_name}_{short_task_name(part_name)}")


def signature_names(names: Sequence[str], programs: Sequence[SavedProgram]) -> list[str]:
    """The signatures an export of ``programs`` called ``names`` has, in order."""
    bases = [base for name, program in zip(names, programs)
             for base in (name, *(part_signature_name(name, part.name) for part in program.parts))]
    signatures = [s for base in bases for s in (base, f"{base}_bytes")]
    return (list(SINGLE_PROGRAM_SIGNATURES) if len(names) == 1 else []) + signatures


def next_version(base_dir: str | os.PathLike[str]) -> int:
    """One more than the largest numeric version folder in ``base_dir`` (1 when there is none)."""
    base = Path(base_dir)
    versions = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_programs(programs: Sequence[SavedProgram | str | os.PathLike[str]], base_dir: str | os.PathLike[str],
                    version: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                    names: Sequence[str] | None = None) -> Path:
    """Writes ``programs`` (saved programs or their folders) as version ``version`` of ``base_dir``.

    Returns the version folder. Raises ExportError when the programs are on different
    backbones, names collide, or the version already exists.
    """
    loaded = [p if isinstance(p, SavedProgram) else SavedProgram.load(p) for p in programs]
    if not loaded:
        raise ExportError("no programs to export")
    if max_pixels < 1:
        raise ExportError(f"max_pixels must be positive, got {max_pixels}")
    chosen = program_names(loaded, names)
    _check_same_backbone(loaded, chosen)
    base = Path(base_dir)
    version = next_version(base) if version is None else int(version)
    if version < 1:
        raise ExportError(f"versions are positive integers, got {version}")
    target = base / str(version)
    if target.exists():
        raise ExportError(f"{target} already exists; TF Serving versions are immutable, pick another --version")

    backbone = loaded[0].build_backbone()
    models = {name: saved.build_model(backbone) for name, saved in zip(chosen, loaded)}
    signatures = _signatures(models, dict(zip(chosen, loaded)), max_pixels)
    # Track the variables themselves, not the Keras models: each is then saved exactly once.
    module = tf.Module(name="arnn_export")
    module.backbone_variables = [v.value for v in backbone.variables]
    module.program_variables = [v.value for m in models.values() for v in (*m.program.weights, *m.label_map.weights)]
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=base, prefix=f".{version}.tmp-"))
    try:
        tf.saved_model.save(module, str(staging), signatures={n: f for n, (f, _, _) in signatures.items()})
        _write_warmup(staging / "assets.extra" / WARMUP_FILE, signatures, base.name or "arnn")
        os.chmod(staging, 0o755)
        os.rename(staging, target)
    except BaseException:
        tf.io.gfile.rmtree(str(staging))
        raise
    return target


def program_names(programs: Sequence[SavedProgram], names: Sequence[str] | None) -> list[str]:
    """Explicit names (sanitized) or the programs' short task names (``folder:/data/mnist`` ->
    ``mnist``); refuses duplicates and reserved names."""
    if names is not None and len(names) != len(programs):
        raise ExportError(f"{len(names)} names given for {len(programs)} programs")
    defaults = [short_task_name(p.task_name) for p in programs]
    chosen = [sanitize_name(n) for n in (names if names is not None else defaults)]
    if len(set(chosen)) != len(chosen):
        raise ExportError(f"program names must differ, got {chosen}; give each program a name (--name)")
    signatures = signature_names(chosen, programs)
    reserved = [n for n in chosen if n in SINGLE_PROGRAM_SIGNATURES]
    if reserved or len(set(signatures)) != len(signatures):
        raise ExportError(f"program names {chosen} clash with each other's signatures (parts' included) "
                          f"or with {SINGLE_PROGRAM_SIGNATURES}; choose other names")
    return chosen


def _check_same_backbone(programs: Sequence[SavedProgram], names: Sequence[str]) -> None:
    first = programs[0].backbone
    for name, program in zip(names, programs):
        if (program.backbone.name, program.backbone.fingerprint) != (first.name, first.fingerprint):
            raise ExportError(
                f"programs in one export share one backbone, but {names[0]!r} is on {first.name!r} "
                f"(fingerprint {first.fingerprint[:12]}) and {name!r} on {program.backbone.name!r} "
                f"(fingerprint {program.backbone.fingerprint[:12]}); export them separately")
        if program.frame_size != programs[0].frame_size:
            raise ExportError(
                f"programs in one export share one backbone input, but {names[0]!r} is "
                f"{programs[0].frame_size}x{programs[0].frame_size} and {name!r} "
                f"{program.frame_size}x{program.frame_size}; export them separately")


_Signature = tuple[Any, str, np.ndarray]
"""A signature's function, its input's name and a one-image example input (for warm-up)."""

_Probabilities = Callable[[tf.Tensor], tf.Tensor]
"""uint8 images [batch, h, w, c] -> class probabilities [batch, classes]."""


def _signatures(models: dict[str, ReprogrammedModel], programs: dict[str, SavedProgram],
                max_pixels: int) -> dict[str, _Signature]:
    """Every signature of the export, by name (see the module docstring)."""
    signatures: dict[str, _Signature] = {}

    def add(base: str, probabilities_of: _Probabilities, class_names: list[str], shape: tuple[int, int, int]) -> None:
        pixels = _pixels_function(probabilities_of, class_names, shape)
        signatures[base] = (pixels, "images", np.zeros((1, *shape), "uint8"))
        signatures[f"{base}_bytes"] = (_bytes_function(pixels, shape, max_pixels), "image_bytes", _blank_png(shape))

    for name, model in models.items():
        program = programs[name]
        add(name, lambda images, model=model: model(images, training=False), program.class_names,
            program.task_image_shape)
        for part in program.parts:
            add(part_signature_name(name, part.name), _part_probabilities(model, part.first_class, part.num_classes),
                program.part_class_names(part), program.task_image_shape)
    if len(models) == 1:
        (name,) = models
        signatures["serving_default"] = signatures[name]
        signatures["predict_bytes"] = signatures[f"{name}_bytes"]
    return signatures


def _part_probabilities(model: ReprogrammedModel, first_class: int, num_classes: int) -> _Probabilities:
    """Images -> probabilities of classes ``first_class`` .. ``first_class + num_classes - 1`` alone.

    The combined program's softmax spans every part's classes, so a digit also gets some
    probability of being a CIFAR-10 "cat". A client that calls one part's signature knows
    which data set its image comes from and asks "which of this part's classes?": the answer
    is the probability of each class given that the class is one of the part's, i.e. the
    part's probabilities divided by their sum. The argmax is the one `evaluate_parts` scores.
    `LabelMapping.probabilities` computes it from the logits (a softmax over the part's
    ImageNet classes), so it stays finite when other parts hold nearly all the mass. With the
    model's ``flip_average`` these are averaged with the mirror image's, as in the model.
    """
    def one_view(images: tf.Tensor) -> tf.Tensor:
        logits = model.backbone(model.program(images), training=False)
        return model.label_map.probabilities(logits, first_class, num_classes)

    if model.flip_average:
        return lambda images: average_with_mirror(one_view, images)
    return one_view


def _pixels_function(probabilities_of: _Probabilities, class_names: list[str], shape: tuple[int, int, int]) -> Any:
    """The pixel signature: checks the input's shape, then ``probabilities_of(images)``, ids and names."""
    names = tf.constant(class_names)
    expected = tf.constant(shape, dtype=tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.uint8, name="images")])
    def predict(images: tf.Tensor) -> dict[str, tf.Tensor]:
        # The model server feeds tensors without checking the placeholder's shape: check it here.
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(images)[1:], expected)),
            [f"images must be uint8 [batch, {shape[0]}, {shape[1]}, {shape[2]}]; got shape", tf.shape(images)])
        with tf.control_dependencies([check]):
            probabilities = tf.cast(probabilities_of(tf.identity(images)), tf.float32)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "class_ids": class_ids, "class_names": tf.gather(names, class_ids)}

    return predict


def _bytes_function(pixels: Any, shape: tuple[int, int, int], max_pixels: int) -> Any:
    """The bytes signature: decodes each of ``image_bytes`` (`_decode`), then the pixel one."""
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def predict_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        indices = tf.range(tf.size(image_bytes, out_type=tf.int64))
        images = tf.map_fn(lambda item: _decode(item[0], item[1], shape, max_pixels),
                           (image_bytes, indices), fn_output_signature=tf.TensorSpec(shape, tf.uint8))
        return pixels(images)

    return predict_bytes


def _decode(data: tf.Tensor, index: tf.Tensor, shape: tuple[int, int, int],
            max_pixels: int) -> tf.Tensor:
    """``image_bytes[index]``, one encoded JPEG/PNG, to uint8 pixels of ``shape``.

    The size is read from the header and checked before decoding, so a decompression bomb (a
    small file whose header claims a huge image) is refused without allocating its pixels.
    Refusals are InvalidArgumentErrors naming the input ("image_bytes[2]: ..."); pixel data cut
    short gets the decoder's own ("Invalid PNG data", "Invalid JPEG data"). Either fails that
    request only: the next one is served as usual.
    """
    height, width = _header_size(data, index)
    too_large = tf.strings.format(
        "image_bytes[{}] is {} x {} pixels (height x width); "
        f"images may have at most {max_pixels} pixels", (index, height, width))
    within_limit = tf.logical_and(tf.logical_and(height > 0, width > 0), height * width <= max_pixels)
    with tf.control_dependencies([tf.debugging.Assert(within_limit, [too_large])]):
        image = tf.io.decode_image(data, channels=shape[2], dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, shape[2]])
    resized = tf.image.resize(image, shape[:2], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _header_size(data: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(height, width) as int64 from the PNG IHDR or JPEG SOF header of ``image_bytes[index]``.

    Asserts the bytes start as a PNG (signature, then the IHDR chunk) or a JPEG does.
    """
    is_png = tf.logical_and(tf.strings.length(data) >= 24,
                            tf.equal(tf.strings.substr(data, 0, 16), PNG_SIGNATURE + PNG_IHDR))
    is_jpeg = tf.io.is_jpeg(data)
    not_an_image = tf.strings.format(
        "image_bytes[{}]: not a JPEG or PNG image (undecodable or truncated bytes)", index)
    check = tf.debugging.Assert(tf.logical_or(is_png, is_jpeg), [not_an_image])

    def png_size() -> tf.Tensor:  # IHDR data: width, height as 4-byte big-endian unsigned ints
        header = tf.io.decode_raw(tf.strings.substr(data, 16, 8), tf.uint8)
        digits = tf.reshape(tf.cast(header, tf.int64), [2, 4])
        width_height = tf.reduce_sum(digits * tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64), 1)
        return tf.reverse(width_height, [0])

    def jpeg_size() -> tf.Tensor:
        return tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)

    with tf.control_dependencies([check]):
        size = tf.cond(is_png, png_size, jpeg_size)
    return size[0], size[1]


def _blank_png(shape: tuple[int, int, int]) -> np.ndarray:
    return np.array([tf.io.encode_png(tf.zeros(shape, tf.uint8)).numpy()], dtype=object)


def _write_warmup(path: Path, signatures: dict[str, _Signature], model_name: str) -> None:
    """One PredictionLog per signature (batch 1), so the server runs every graph once before real traffic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, (_, input_name, example) in signatures.items():
            writer.write(prediction_log_bytes(model_name, signature, {input_name: example}))


def prediction_log_bytes(model_name: str, signature_name: str, inputs: dict[str, np.ndarray]) -> bytes:
    """A serialized ``tensorflow.serving.PredictionLog`` holding one PredictRequest.

    Encoded by hand (protobuf wire format) so exporting needs no ``tensorflow-serving-api``,
    which pins the full TensorFlow wheel. Field numbers are those of ``prediction_log.proto``
    (predict_log = 6), ``predict.proto`` (request = 1; model_spec = 1, inputs = 2) and
    ``model.proto`` (name = 1, signature_name = 3); tests parse the result with the real classes.
    """
    model_spec = _field(1, model_name.encode()) + _field(3, signature_name.encode())
    request = _field(1, model_spec)
    for key, value in inputs.items():
        request += _field(2, _field(1, key.encode()) + _field(2, tf.make_tensor_proto(value).SerializeToString()))
    return _field(6, _field(1, request))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)



def export_command(args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``arnn export``; prints and returns the version folder and its signatures."""
    programs = [SavedProgram.load(p) for p in args.program]
    path = export_programs(programs, args.out, version=args.version, max_pixels=args.max_pixels, names=args.name)
    signatures = signature_names(program_names(programs, args.name), programs)
    print(f"exported to {path}; signatures: {', '.join(signatures)}")
    return {"path": str(path), "signatures": signatures}
