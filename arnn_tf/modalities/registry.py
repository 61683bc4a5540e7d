"""The modalities arnn-tf knows, by name: one table instead of one per concern."""

from __future__ import annotations

from arnn_tf.modalities.base import Modality
from arnn_tf.modalities.image import model as image_model
from arnn_tf.modalities.image import signatures as image_signatures
from arnn_tf.modalities.image.placement import image_encoder_for
from arnn_tf.modalities.text import model as text_model
from arnn_tf.modalities.text import signatures as text_signatures

MODALITIES: dict[str, Modality] = {
    "image": Modality(
        "image",
        image_encoder_for,
        image_model.image_model_for,
        image_signatures.image_signatures,
        image_signatures.SUFFIXES,
        image_model.read_files,
    ),
    "text": Modality(
        "text",
        text_model.text_encoder_for,
        text_model.text_model_for,
        text_signatures.text_signatures,
        text_signatures.SUFFIXES,
        text_model.read_texts,
    ),
}


def modality(name: str) -> Modality:
    """The modality called ``name``; ValueError naming the known ones otherwise."""
    if name not in MODALITIES:
        raise ValueError(f"unknown input modality {name!r}; known: {', '.join(MODALITIES)}")
    return MODALITIES[name]
