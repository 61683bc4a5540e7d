"""The reprogrammed model of an image task: task images -> image placement (or concealment in
a host photo) -> frame program -> frozen backbone -> label map (Elsayed et al., 2019)."""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from arnn_tf.layers.frame_program import FrameProgram
from arnn_tf.modalities.host_photo import recipe_host_photo
from arnn_tf.modalities.image.files import read_images
from arnn_tf.modalities.image.placement import (
    ConcealedPlacement,
    ImagePlacement,
    recipe_image_size,
)
from arnn_tf.models.reprogrammed import ReprogrammedModel, build_label_map, program_code
from arnn_tf.settings import DEFAULT_CONCEAL_SCALE


def build_reprogrammed_model(
    backbone: keras.Model,
    task_image_shape: Sequence[int],
    num_classes: int,
    *,
    label_map: str = "first",
    seed: int = 0,
    host_image: np.ndarray | None = None,
    conceal_scale: float = DEFAULT_CONCEAL_SCALE,
    flip_average: bool = False,
    **program_options: Any,
) -> ReprogrammedModel:
    """A fresh (zero) program for ``num_classes`` classes on ``backbone``.

    ``label_map`` is a spec understood by `arnn_tf.label_maps.specs.parse_label_map`;
    ``program_options`` are `image_placement_and_program`'s (image_size, border_width,
    linf_bound, full_program, l2, code). With ``host_image`` (the backbone's n x n x 3 pixels
    in [0, 255]) the task image is hidden in that photo with scale ``conceal_scale`` (a
    `ConcealedPlacement`); of the program options it then takes only l2 and code. ``seed`` draws the
    random label maps and the concealment's pixel permutation. ``flip_average`` is
    `ReprogrammedModel`'s.
    """
    frame_size = int(backbone.input_shape[1])
    if host_image is None:
        encoder, program = image_placement_and_program(
            frame_size, task_image_shape, **program_options
        )
    else:
        encoder, program = concealment_and_program(
            frame_size, task_image_shape, host_image, conceal_scale, seed, **program_options
        )
    mapping = build_label_map(label_map, num_classes, seed, int(backbone.output_shape[-1]))
    return ReprogrammedModel(program, backbone, mapping, encoder, flip_average=flip_average)


def image_model_for(recipe: Any, task: Any, backbone: keras.Model) -> ReprogrammedModel:
    """An image task's model from a `arnn_tf.recipes.Recipe`: its placement, concealment and
    map."""
    frame_size = int(backbone.input_shape[1])
    host_image, conceal_scale = recipe_host_photo(recipe, frame_size)
    return build_reprogrammed_model(
        backbone,
        task.image_shape,
        task.num_classes,
        label_map=recipe.label_map,
        seed=recipe.seed,
        host_image=host_image,
        conceal_scale=conceal_scale,
        image_size=recipe_image_size(recipe, frame_size),
        border_width=recipe.border_width,
        linf_bound=recipe.linf_bound,
        full_program=recipe.full_program,
        l2=recipe.l2,
        code=program_code(recipe),
        flip_average=recipe.flip_average,
    )


def image_placement_and_program(
    frame_size: int,
    task_image_shape: Sequence[int],
    image_size: Sequence[int] | None = None,
    border_width: int | None = None,
    linf_bound: float | None = None,
    full_program: bool = False,
    l2: float = 0.0,
    code: dict[str, int] | None = None,
) -> tuple[ImagePlacement, FrameProgram]:
    """An image task's input encoder (the placement in the frame) and its frame program, the
    paper's ``X_adv = X~ + P``: the program acts where the placement's mask lets it; ``code``
    is `FrameProgram`'s ``code_dimension`` and ``code_seed`` where W is written as a code.

    The arguments are the settings image programs of formats 1 and 3 were saved with."""
    placement = ImagePlacement(frame_size, task_image_shape, image_size, border_width, full_program)
    in_range = not full_program and (linf_bound is None or linf_bound <= 1)
    program = FrameProgram(
        frame_size,
        placement.program_mask,
        linf_bound=linf_bound,
        l2=l2,
        clip=not in_range,
        **(code or {}),
    )
    return placement, program


def concealment_and_program(
    frame_size: int,
    task_image_shape: Sequence[int],
    host_image: np.ndarray | None,
    conceal_scale: float,
    permutation_seed: int = 0,
    l2: float = 0.0,
    code: dict[str, int] | None = None,
    **placement: Any,
) -> tuple[ConcealedPlacement, FrameProgram]:
    """The task image hidden in the host photo and a frame program bounded by
    ``conceal_scale`` (alpha): ``clip(host + alpha * (tanh(W) + shuffle(tile(X~))), -1, 1)``,
    the paper's concealment.

    The task image is tiled over the whole frame, so placement settings are refused."""
    placement = {key: value for key, value in placement.items() if value not in (None, False)}
    if placement:
        raise ValueError(
            f"a concealed program tiles the task image over the whole frame, so it takes no "
            f"placement options (image size, border width, L-infinity bound, full program); "
            f"got {placement}"
        )
    encoder = ConcealedPlacement(
        frame_size, task_image_shape, conceal_scale, permutation_seed, host_image=host_image
    )
    bound = encoder.conceal_scale
    mask = encoder.program_mask
    program = FrameProgram(frame_size, mask, linf_bound=bound, l2=l2, **(code or {}))
    return encoder, program


def read_files(encoder: Any, input_state: None, paths: list[str]) -> np.ndarray:
    """The image files at ``paths`` as the input ``encoder`` reads task images: uint8 pixels
    at its task image shape (image parts keep no input state)."""
    height, width, channels = encoder.task_image_shape
    return read_images(paths, (height, width), channels)
