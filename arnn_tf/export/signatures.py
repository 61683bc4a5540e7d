"""The serving signatures: one pixel and one bytes signature per image program and per part,
one string signature per text program.

Every signature answers ``probabilities`` (float32 [batch, classes]), ``class_ids`` (int64
[batch]) and ``class_names`` (string [batch]), so a client reads any of them the same way.
Part signatures of a multi-task program run on the program's own variables: they add graphs,
not weights.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import tensorflow as tf

from arnn_tf.export.decoding import decode_image
from arnn_tf.export.names import part_signature_name
from arnn_tf.model import ReprogrammedModel, average_with_mirror
from arnn_tf.programs import SavedProgram
from arnn_tf.text.task import input_vectorizer


class Signature(NamedTuple):
    """A signature's traced function, its input's name and a one-example input for warm-up,
    and what else the SavedModel must keep for it to run (a text program's vectorizer)."""

    function: Any
    input_name: str
    example: np.ndarray
    resources: tuple[Any, ...] = ()


Probabilities = Callable[[tf.Tensor], tf.Tensor]
"""uint8 images [batch, h, w, c] -> class probabilities [batch, classes]."""


def build_signatures(
    models: dict[str, ReprogrammedModel], programs: dict[str, SavedProgram], max_pixels: int
) -> dict[str, Signature]:
    """Every signature of the export, by name (see `arnn_tf.export`)."""
    signatures: dict[str, Signature] = {}

    def add(
        base: str,
        probabilities_of: Probabilities,
        class_names: list[str],
        shape: tuple[int, int, int],
    ) -> None:
        pixels = pixels_function(probabilities_of, class_names, shape)
        signatures[base] = Signature(pixels, "images", np.zeros((1, *shape), "uint8"))
        signatures[f"{base}_bytes"] = Signature(
            bytes_function(pixels, shape, max_pixels), "image_bytes", blank_png(shape)
        )

    for name, model in models.items():
        program = programs[name]
        if program.input_state is not None:
            signatures[name] = text_signature(
                lambda ids, model=model: model(ids, training=False),
                program.input_state,
                program.class_names,
            )
            continue
        if program.members:
            _add_member_signatures(signatures, add, name, model, program)
            continue
        add(
            name,
            lambda images, model=model: model(images, training=False),
            program.class_names,
            program.task_image_shape,
        )
        for part in program.parts:
            add(
                part_signature_name(name, part.name),
                part_probabilities(model, part.first_class, part.num_classes),
                program.part_class_names(part),
                program.task_image_shape,
            )
    if len(models) == 1 and next(iter(models)) in signatures:
        (name,) = models
        signatures["serving_default"] = signatures[name]
        if f"{name}_bytes" in signatures:
            signatures["predict_bytes"] = signatures[f"{name}_bytes"]
    return signatures


def _add_member_signatures(
    signatures: dict[str, Signature], add: Any, name: str, model: Any, program: SavedProgram
) -> None:
    """A shared-program (mixed) program's signatures: one per part, on its own input (a
    string one for a text part, the pixel and bytes ones for an image part)."""
    for i, member in enumerate(program.members):
        base = part_signature_name(name, member.name)
        probabilities_of = lambda x, m=model.part_model(i): m(x, training=False)  # noqa: E731
        if member.input_state is not None:
            signatures[base] = text_signature(
                probabilities_of, member.input_state, member.class_names
            )
        else:
            shape = tuple(member.encoder["config"]["task_image_shape"])
            add(base, probabilities_of, member.class_names, shape)


def text_signature(
    probabilities_of: Probabilities, input_state: dict[str, Any], class_names: list[str]
) -> Signature:
    """The string signature of a text program or part: ``text`` (string [batch]) in,
    tokenised by the vectorizer of ``input_state``. Bytes that are not UTF-8 become U+FFFD (the
    replacement character) rather than failing the request; an empty text is the padding
    tokens' frame; text past the vectorizer's sequence length is cut."""
    vectorizer = input_vectorizer(input_state)
    names = tf.constant(class_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def predict_text(text: tf.Tensor) -> dict[str, tf.Tensor]:
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
        ids = tf.cast(vectorizer(text), tf.int32)
        probabilities = tf.cast(probabilities_of(ids), tf.float32)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "class_names": tf.gather(names, class_ids),
        }

    return Signature(predict_text, "text", np.array([b""], dtype=object), (vectorizer,))


def part_probabilities(
    model: ReprogrammedModel, first_class: int, num_classes: int
) -> Probabilities:
    """Images -> probabilities of classes ``first_class`` .. ``first_class + num_classes - 1``.

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
        logits = model.backbone(model.adversarial_inputs(images), training=False)
        return model.label_map.probabilities(logits, first_class, num_classes)

    if model.flip_average:
        return lambda images: average_with_mirror(one_view, model.encoder, images)
    return one_view


def pixels_function(
    probabilities_of: Probabilities, class_names: list[str], shape: tuple[int, int, int]
) -> Any:
    """The pixel signature: checks the input's shape, then probabilities, ids and names."""
    names = tf.constant(class_names)
    expected = tf.constant(shape, dtype=tf.int32)
    shape_error = f"images must be uint8 [batch, {shape[0]}, {shape[1]}, {shape[2]}]; got shape"

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.uint8, name="images")])
    def predict(images: tf.Tensor) -> dict[str, tf.Tensor]:
        # The model server feeds tensors without checking the placeholder's shape: check it here.
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(images)[1:], expected)), [shape_error, tf.shape(images)]
        )
        with tf.control_dependencies([check]):
            probabilities = tf.cast(probabilities_of(tf.identity(images)), tf.float32)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "class_names": tf.gather(names, class_ids),
        }

    return predict


def bytes_function(pixels: Any, shape: tuple[int, int, int], max_pixels: int) -> Any:
    """The bytes signature: decodes each of ``image_bytes``, then runs the pixel one."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def predict_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        indices = tf.range(tf.size(image_bytes, out_type=tf.int64))
        images = tf.map_fn(
            lambda item: decode_image(item[0], item[1], shape, max_pixels),
            (image_bytes, indices),
            fn_output_signature=tf.TensorSpec(shape, tf.uint8),
        )
        return pixels(images)

    return predict_bytes


def blank_png(shape: tuple[int, int, int]) -> np.ndarray:
    """One black PNG of ``shape``: a bytes signature's warm-up input, decoded like real ones."""
    return np.array([tf.io.encode_png(tf.zeros(shape, tf.uint8)).numpy()], dtype=object)
