"""The serving signatures: each program, combined-task part and mixed program's part answers
through the signatures of what it reads, as its modality makes them
(`arnn_tf.modalities.registry`: a pixel and a bytes signature for images, a string one for
text).

Every signature answers ``probabilities`` (float32 [batch, classes]), ``class_ids`` (int64
[batch]) and ``class_names`` (string [batch]), so a client reads any of them the same way.
Part signatures of a multi-task program run on the program's own variables: they add graphs,
not weights. A program of several parts also answers with the task unknown: for parts that
read one form of input (images of one shape), ``NAME_any`` answers among all their classes
(named "PART/CLASS"), one classifier for every data set.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from arnn_tf.export.names import Answerer, answerers
from arnn_tf.modalities.base import Probabilities, Signature
from arnn_tf.modalities.registry import modality
from arnn_tf.models.reprogrammed import ReprogrammedModel, average_with_mirror
from arnn_tf.models.task_unknown import task_unknown
from arnn_tf.programs.saved import SavedProgram


def build_signatures(
    models: dict[str, ReprogrammedModel], programs: dict[str, SavedProgram], max_pixels: int
) -> dict[str, Signature]:
    """Every signature of the export, by name (see `arnn_tf.export`)."""
    signatures: dict[str, Signature] = {}
    for name, model in models.items():
        program = programs[name]
        for answerer in answerers(name, program):
            answering = _answering(model, program, answerer)
            make = modality(answerer.modality).signatures
            signatures.update(make(answerer.base, *answering, max_pixels))
    if len(models) == 1 and next(iter(models)) in signatures:
        (name,) = models
        signatures["serving_default"] = signatures[name]
        if f"{name}_bytes" in signatures:
            signatures["predict_bytes"] = signatures[f"{name}_bytes"]
    return signatures


def _part_answers(model: Any, part: int) -> Probabilities:
    """Part ``part``'s inputs -> its classes' probabilities, averaged with the mirror image's
    when the model averages so."""
    part_model = model.part_model(part)

    def one_view(inputs: tf.Tensor) -> tf.Tensor:
        return part_model(inputs, training=False)

    if model.flip_average:
        return lambda inputs: average_with_mirror(one_view, [model.encoders[part]], inputs)
    return one_view


def _answering(
    model: Any, program: SavedProgram, answerer: Answerer
) -> tuple[Probabilities, dict[str, Any], dict[str, Any] | None, list[str]]:
    """What answers for ``answerer``: (its probabilities, the serialised encoder of its input,
    that input's state, its class names)."""
    if answerer.readers:
        readers = list(answerer.readers)
        first = program.parts[readers[0]]
        names = [
            f"{program.parts[i].name}/{c}" for i in readers for c in program.parts[i].class_names
        ]
        return (
            lambda inputs: task_unknown(model, readers, [inputs] * len(readers)),
            first.encoder,
            first.input_state,
            names,
        )
    if answerer.member is not None:
        member = program.parts[answerer.member]
        return (
            _part_answers(model, answerer.member),
            member.encoder,
            member.input_state,
            member.class_names,
        )
    if answerer.part is not None:
        part = answerer.part
        return (
            part_probabilities(model, part.first_class, part.num_classes),
            program.part.encoder,
            program.part.input_state,
            program.part_class_names(part),
        )
    return (
        lambda x: model(x, training=False),
        program.part.encoder,
        program.part.input_state,
        program.class_names,
    )


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
        return model.label_map.probabilities(model.logits(images), first_class, num_classes)

    if model.flip_average:
        return lambda images: average_with_mirror(one_view, [model.encoder], images)
    return one_view
