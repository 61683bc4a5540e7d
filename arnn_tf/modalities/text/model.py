"""The reprogrammed model of a text task: token ids -> token patches -> frame program ->
frozen backbone -> label map (Neekhara et al., "Cross-modal Adversarial Reprogramming")."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.modalities.host_photo import recipe_host_photo
from arnn_tf.modalities.text.encoder import TokenPatchEncoder
from arnn_tf.modalities.text.task import input_vectorizer
from arnn_tf.models.reprogrammed import ReprogrammedModel, build_label_map, program_code
from arnn_tf.settings import DEFAULT_CONCEAL_SCALE

TABLE_INIT_RANGE = 0.1
"""Patch table entries start uniform in +-0.1: on tanh's linear part, distinct, near grey."""


def build_text_model(
    backbone: keras.Model,
    vocabulary_size: int,
    num_classes: int,
    *,
    patch_size: int = 16,
    label_map: str = "linear",
    seed: int = 0,
    linf_bound: float | None = None,
    l2: float = 0.0,
    host_image: np.ndarray | None = None,
    conceal_scale: float = DEFAULT_CONCEAL_SCALE,
    code: dict[str, int] | None = None,
) -> ReprogrammedModel:
    """A fresh text model on ``backbone``: a `TokenPatchEncoder` of ``vocabulary_size`` ids and
    ``patch_size`` patches, a zero `FrameProgram` over the whole frame, and the label map the
    spec ``label_map`` names. Trainable: the patch table, W and a learned map. With
    ``host_image`` (n x n x 3 pixels) the patches are blended into it with weight
    ``conceal_scale`` and the program is bounded by it too (concealment: no ``linf_bound``
    then). ``code``: `arnn_tf.models.reprogrammed.program_code`'s settings."""
    frame_size = int(backbone.input_shape[1])
    hidden = {}
    if host_image is not None:
        hidden = {"conceal_scale": conceal_scale, "host_image": host_image}
    encoder = token_patch_encoder(vocabulary_size, frame_size, patch_size, seed, **hidden)
    if host_image is not None:
        if linf_bound is not None:
            raise ValueError("a text blended into a photo has its program bounded by conceal_scale")
        linf_bound = conceal_scale
    program = FrameProgram(
        frame_size, encoder.program_mask, linf_bound=linf_bound, l2=l2, **(code or {})
    )
    mapping = build_label_map(label_map, num_classes, seed, int(backbone.output_shape[-1]))
    return ReprogrammedModel(program, backbone, mapping, encoder)


def token_patch_encoder(
    vocabulary_size: int, frame_size: int, patch_size: int, seed: int = 0, **kwargs: Any
) -> TokenPatchEncoder:
    """A fresh encoder whose patches start near grey (`TABLE_INIT_RANGE`), drawn from ``seed``;
    ``kwargs`` are the layer's (its name)."""
    initializer = keras.initializers.RandomUniform(-TABLE_INIT_RANGE, TABLE_INIT_RANGE, seed=seed)
    return TokenPatchEncoder(
        vocabulary_size, frame_size, patch_size, embeddings_initializer=initializer, **kwargs
    )


def text_encoder_for(recipe: Any, task: Any, frame_size: int, name: str) -> TokenPatchEncoder:
    """A text task's encoder called ``name``, as a recipe sets it (its patch size and seed,
    and its blend into the recipe's host photo)."""
    host_image, conceal_scale = recipe_host_photo(recipe, frame_size)
    hidden = (
        {} if host_image is None else {"conceal_scale": conceal_scale, "host_image": host_image}
    )
    return token_patch_encoder(
        task.vocabulary_size, frame_size, recipe.patch_size, recipe.seed, name=name, **hidden
    )


IMAGE_ONLY_FIELDS = (
    "image_size",
    "image_scale",
    "border_width",
    "full_program",
    "flip_average",
    "augment",
)
"""Recipe fields that place, mirror or augment images: a text task has none to act on
(``conceal`` blends a text's patches into the host photo instead)."""


def text_model_for(recipe: Any, task: Any, backbone: keras.Model) -> ReprogrammedModel:
    """A text task's model from a `arnn_tf.recipes.Recipe`: its patch size, map, bound and
    L2; a recipe that sets an image-only field is refused, naming it."""
    image_only = [field for field in IMAGE_ONLY_FIELDS if getattr(recipe, field)]
    if image_only:
        raise ValueError(
            f"task {task.name!r} is text, but recipe fields {', '.join(image_only)} act on "
            "images; clear them (the 'text' recipe sets none)"
        )
    host_image, conceal_scale = recipe_host_photo(recipe, int(backbone.input_shape[1]))
    return build_text_model(
        backbone,
        task.vocabulary_size,
        task.num_classes,
        patch_size=recipe.patch_size,
        label_map=recipe.label_map,
        seed=recipe.seed,
        linf_bound=recipe.linf_bound,
        l2=recipe.l2,
        host_image=host_image,
        conceal_scale=conceal_scale,
        code=program_code(recipe),
    )


def read_texts(encoder: Any, input_state: dict[str, Any], texts: list[str]) -> np.ndarray:
    """``texts`` as the input ``encoder`` reads them: token ids, by the vectorizer the program
    was trained with (``input_state``; its patch table is indexed by those ids)."""
    if not texts:
        raise ValueError("no texts to classify")
    ids = input_vectorizer(input_state)(list(texts))
    return keras.ops.convert_to_numpy(keras.ops.cast(ids, "int32"))
