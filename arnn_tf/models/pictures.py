"""Pictures of a program: what the frozen network is shown, to look at rather than read.

`program_picture` lays out, left to right, the program ``P`` alone and the adversarial
inputs ``X_adv`` the backbone sees for a few task images, each with the model's answer
below it, as one PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from PIL import Image, ImageDraw

from arnn_tf.models.reprogrammed import ReprogrammedModel

GAP = 8
CAPTION_HEIGHT = 18


def to_pixels(frame: np.ndarray) -> np.ndarray:
    """A frame in [-1, 1] (height, width, 3) as uint8 pixels."""
    return np.clip(np.round((np.asarray(frame, "float32") + 1.0) * 127.5), 0, 255).astype("uint8")


def program_picture(
    model: ReprogrammedModel,
    images: np.ndarray,
    class_names: Sequence[str],
    labels: Sequence[int] | None = None,
) -> Image.Image:
    """P, then X_adv for each of ``images`` (the model's inputs: [n, h, w, c] uint8 images, or
    a text model's token ids), captioned with the model's answer (and the true class, where
    ``labels`` are given)."""
    frames = [to_pixels(keras.ops.convert_to_numpy(model.program.program()))]
    x_adv = keras.ops.convert_to_numpy(model.adversarial_inputs(images))
    frames += [to_pixels(x) for x in x_adv]
    answers = model.predict(images, verbose=0).argmax(axis=-1)
    captions = ["P (the program)"]
    for i, answer in enumerate(answers):
        truth = "" if labels is None else f" (true: {class_names[int(labels[i])]})"
        captions.append(f"says {class_names[int(answer)]}{truth}")
    return _strip(frames, captions)


def _strip(frames: list[np.ndarray], captions: list[str]) -> Image.Image:
    height, width = frames[0].shape[:2]
    canvas = Image.new("RGB", (len(frames) * (width + GAP) - GAP, height + CAPTION_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (frame, caption) in enumerate(zip(frames, captions)):
        left = i * (width + GAP)
        canvas.paste(Image.fromarray(frame), (left, 0))
        draw.text((left + 2, height + 3), caption, fill="black")
    return canvas


def save_picture(picture: Image.Image, path: str | Path) -> Path:
    """Writes ``picture`` as a PNG, making its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG")
    return path
