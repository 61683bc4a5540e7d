"""The layers that turn a frozen ImageNet classifier into a classifier for another task.

`AdversarialProgram` builds the network input ``X_adv = X~ + P`` (Elsayed et al., 2019),
`ConcealedProgram` hides task image and program in a natural photo instead (the paper's
concealment ablation), and `LabelMapping` reads the task's class probabilities off the
ImageNet outputs. All use `keras.ops` only, so they run on any Keras backend, and
round-trip through `get_config`.

Pixel convention: task images come in as RGB or grayscale pixel values in [0, 255] (any dtype);
`X_adv` goes out in [-1, 1], the range the paper works in. Each backbone adapts [-1, 1] to
what its network expects (see `arnn_tf.backbones`).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from arnn_tf.image_placement import PLACEMENT_FIELDS, ImagePlacement

# DEFAULT_CONCEAL_SCALE is small, as in the paper: at most 25.5 of 255 grey levels.
from arnn_tf.settings import DEFAULT_CONCEAL_SCALE


@keras.saving.register_keras_serializable(package="arnn_tf")
class AdversarialProgram(keras.layers.Layer):
    """Pads a task image into an n x n frame and adds the learned program ``P = tanh(W * M)``.

    The placement and the mask M are an `ImagePlacement`'s (the image input encoder); this
    layer adds the program to its canvas and keeps the paper's settings in one config.

    Args:
        frame_size: n, the backbone's input width and height.
        task_image_shape: (height, width, channels) of the task images, channels 1 or 3.
        image_size: if set, task images are first resized to this (height, width), the
            "scaled input" variant; the program mask then leaves that larger window free.
        border_width: if set, the program only lives in a band this many pixels wide along the
            frame's edge (the paper's limited-program ablation); otherwise it fills every pixel
            outside the task window.
        linf_bound: if set, ``P = linf_bound * tanh(W * M)``: an L-infinity bound on the program
            in units of the [-1, 1] input range (0.1 is about 13 of 255 grey levels).
        program_covers_image: if True the program is also added over the task image (the
            "full" program of later work, usually with ``image_size`` filling the frame);
            by default the task window is left untouched, as in the paper.
        l2: lambda, the weight of ``||W||_F^2`` in the loss.
    """

    def __init__(
        self,
        frame_size: int,
        task_image_shape: Sequence[int],
        image_size: Sequence[int] | None = None,
        border_width: int | None = None,
        linf_bound: float | None = None,
        program_covers_image: bool = False,
        l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "adversarial_program")
        super().__init__(**kwargs)
        if linf_bound is not None and not linf_bound > 0:
            raise ValueError(f"linf_bound must be positive, got {linf_bound}")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.placement = ImagePlacement(
            frame_size,
            task_image_shape,
            image_size,
            border_width,
            program_covers_image,
            name=f"{self.name}_placement",
        )
        self.frame_size = self.placement.frame_size
        self.task_image_shape = self.placement.task_image_shape
        self.image_size = self.placement.image_size
        self.window = self.placement.window
        self.border_width = border_width
        self.linf_bound = linf_bound
        self.program_covers_image = self.placement.program_covers_image
        self.l2 = float(l2)
        self.padding = self.placement.padding
        self.mask = self.placement.program_mask
        self.weight = self.add_weight(
            name="W",
            shape=(frame_size, frame_size, 3),
            initializer="zeros",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            trainable=True,
        )

    def program(self) -> Any:
        """P, the additive program, in [-linf_bound, linf_bound] (or [-1, 1])."""
        p = ops.tanh(self.weight * ops.convert_to_tensor(self.mask, dtype=self.weight.dtype))
        return p if self.linf_bound is None else self.linf_bound * p

    def task_pixels(self, images: Any) -> Any:
        """Task images, [0, 255] with 1 or 3 channels, as RGB in [-1, 1] in the compute dtype."""
        return self.placement.task_pixels(images)

    def call(self, images: Any) -> Any:
        x_adv = self.placement(images) + ops.cast(self.program(), self.compute_dtype)
        return ops.clip(x_adv, -1.0, 1.0) if self.may_leave_range else x_adv

    @property
    def may_leave_range(self) -> bool:
        """Whether ``X_adv`` needs clipping to [-1, 1].

        Not when the program stays off the task window and ``|P| <= 1``: each pixel is then
        either a task pixel or a program value. Skipping the clip saves its gradient's selects
        over every frame pixel in each step.
        """
        return self.program_covers_image or (self.linf_bound is not None and self.linf_bound > 1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], self.frame_size, self.frame_size, 3)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        placement = self.placement.get_config()
        config.update({key: placement[key] for key in PLACEMENT_FIELDS})
        config.update(linf_bound=self.linf_bound, l2=self.l2)
        return config


@keras.saving.register_keras_serializable(package="arnn_tf")
class ConcealedProgram(AdversarialProgram):
    """Task image and program hidden in a natural photo, the host (the concealment ablation).

    ``X_adv = clip(X_host + scale * (tanh(W) + shuffle(tile(X~))), -1, 1)``, after Elsayed et
    al. (2019), section "Concealing adversarial programs": the task image is tiled over the
    whole n x n frame (cropped at the right and bottom edges) and the frame's pixel positions
    are then shuffled by one fixed permutation, the same for every image and channel, drawn
    with ``np.random.default_rng(permutation_seed)`` as the `shuffled:TASK` ablation draws its; the
    program covers the whole frame. Both ``tanh(W)`` and the task pixels lie in [-1, 1], so
    the visible change ``|X_adv - X_host|`` is at most ``2 * scale``: ``scale`` times the
    width of the input range (``scale`` 0.1: at most 25.5 of 255 grey levels).

    The host photo lives in a non-trainable weight, ``host_image`` (n x n x 3 pixel values in
    [0, 255]), so it is saved and loaded with the model's weights and never trained; only
    ``W`` is. It is not part of `get_config`: a layer made from its config holds a black host
    until the weights are loaded.

    Args:
        frame_size: n, the backbone's input width and height.
        task_image_shape: (height, width, channels) of the task images, channels 1 or 3, at
            most n x n.
        host_image: the host photo, (n, n, 3) pixel values in [0, 255]; None for black.
        scale: alpha, in (0, 1]; the paper kept it small (0.1 is the default).
        permutation_seed: seed of the pixel permutation.
        l2: lambda, the weight of ``||W||_F^2`` in the loss.
    """

    def __init__(
        self,
        frame_size: int,
        task_image_shape: Sequence[int],
        host_image: np.ndarray | None = None,
        scale: float = DEFAULT_CONCEAL_SCALE,
        permutation_seed: int = 0,
        l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "concealed_program")
        super().__init__(frame_size, task_image_shape, program_covers_image=True, l2=l2, **kwargs)
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        n = self.frame_size
        if host_image is None:
            host_image = np.zeros((n, n, 3), "float32")
        host_image = np.asarray(host_image, dtype="float32")
        if host_image.shape != (n, n, 3):
            raise ValueError(
                f"the host image must be {n}x{n}x3 (the backbone's input), "
                f"got shape {host_image.shape}"
            )
        if not (
            np.all(np.isfinite(host_image)) and host_image.min() >= 0 and host_image.max() <= 255
        ):
            raise ValueError("the host image's pixel values must lie in [0, 255]")
        self.scale = float(scale)
        self.permutation_seed = int(permutation_seed)
        self.permutation = (
            np.random.default_rng(self.permutation_seed).permutation(n * n).astype("int32")
        )
        height, width, _ = self.task_image_shape
        self.tiles = (-(-n // height), -(-n // width))
        self.host_image = self.add_weight(
            name="host_image",
            shape=(n, n, 3),
            trainable=False,
            initializer=keras.initializers.Constant(host_image),
        )

    def hidden_task_image(self, images: Any) -> Any:
        """``shuffle(tile(X~))``: the task images tiled over the frame, pixels permuted."""
        n = self.frame_size
        tiled = ops.tile(self.task_pixels(images), (1, *self.tiles, 1))[:, :n, :n, :]
        shuffled = ops.take(ops.reshape(tiled, (-1, n * n, 3)), self.permutation, axis=1)
        return ops.reshape(shuffled, (-1, n, n, 3))

    def call(self, images: Any) -> Any:
        host = ops.cast(self.host_image, self.compute_dtype) / 127.5 - 1.0
        program = ops.cast(self.program(), self.compute_dtype)
        return ops.clip(host + self.scale * (program + self.hidden_task_image(images)), -1.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for placement in ("image_size", "border_width", "linf_bound", "program_covers_image"):
            del config[placement]  # the task image is always tiled and the program covers the frame
        config.update(scale=self.scale, permutation_seed=self.permutation_seed)
        return config


@keras.saving.register_keras_serializable(package="arnn_tf")
class LabelMapping(keras.layers.Layer):
    """Map from the backbone's logits to task-class probabilities, h_g in the paper.

    ``groups[k]`` lists the ImageNet classes that vote for task class k. The output is the
    probability mass of each group under a softmax restricted to all mapped classes, so
    several ImageNet classes per task class add their probabilities (not their logits),
    and the task probabilities sum to one. Restricting the softmax to the mapped classes
    is what public re-implementations train with; it is also numerically safe.

    The map is never trained. It lives in a non-trainable variable so that `set_groups`
    can replace it between epochs (iterative label mapping) without retracing.
    """

    def __init__(
        self, groups: Sequence[Sequence[int]], num_source_classes: int = 1000, **kwargs: Any
    ) -> None:
        kwargs.setdefault("name", "label_mapping")
        super().__init__(trainable=False, **kwargs)
        self.num_source_classes = int(num_source_classes)
        groups = self._checked(groups)
        self.group_sizes = tuple(len(group) for group in groups)
        self.membership = np.repeat(np.eye(len(groups), dtype="float32"), self.group_sizes, axis=0)
        self.source_indices = self.add_weight(
            name="source_indices",
            shape=(sum(self.group_sizes),),
            dtype="int32",
            trainable=False,
            initializer=keras.initializers.Constant(np.concatenate(groups).astype("int32")),
        )

    def _checked(self, groups: Sequence[Sequence[int]]) -> list[list[int]]:
        groups = [[int(c) for c in group] for group in groups]
        flat = [c for group in groups for c in group]
        if not groups or any(not group for group in groups):
            raise ValueError("every task class needs at least one ImageNet class")
        if len(set(flat)) != len(flat):
            raise ValueError("an ImageNet class may vote for only one task class")
        if min(flat) < 0 or max(flat) >= self.num_source_classes:
            raise ValueError(f"ImageNet class indices must be in 0..{self.num_source_classes - 1}")
        return groups

    @property
    def groups(self) -> list[list[int]]:
        flat = keras.ops.convert_to_numpy(self.source_indices.value).tolist()
        bounds = np.cumsum((0, *self.group_sizes))
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def set_groups(self, groups: Sequence[Sequence[int]]) -> None:
        """Replaces the map by one with the same number of ImageNet classes per task class."""
        groups = self._checked(groups)
        if tuple(len(group) for group in groups) != self.group_sizes:
            raise ValueError(
                f"the new map must keep {self.group_sizes} ImageNet classes per task class"
            )
        self.source_indices.assign(np.concatenate(groups).astype("int32"))

    @property
    def num_classes(self) -> int:
        return len(self.group_sizes)

    def call(self, logits: Any) -> Any:
        return self.probabilities(logits)

    def probabilities(
        self, logits: Any, first_class: int = 0, num_classes: int | None = None
    ) -> Any:
        """The probabilities of task classes ``first_class`` .. ``first_class + num_classes - 1``.

        The softmax runs over the ImageNet classes of those task classes alone. That equals the
        layer's full output restricted to those classes and divided by their total, but is
        computed from the logits, so it stays finite even when other classes hold almost all
        the probability mass. With the defaults (all classes) it is the layer's output.
        """
        num_classes = self.num_classes - first_class if num_classes is None else int(num_classes)
        if first_class < 0 or num_classes < 1 or first_class + num_classes > self.num_classes:
            raise ValueError(
                f"classes {first_class}..{first_class + num_classes - 1} are not within the "
                f"map's {self.num_classes} classes"
            )
        bounds = np.cumsum((0, *self.group_sizes))
        start, stop = int(bounds[first_class]), int(bounds[first_class + num_classes])
        mapped = ops.take(ops.cast(logits, "float32"), self.source_indices[start:stop], axis=-1)
        membership = self.membership[start:stop, first_class : first_class + num_classes]
        return ops.matmul(ops.softmax(mapped, axis=-1), membership)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("trainable", None)
        config.update(groups=self.groups, num_source_classes=self.num_source_classes)
        return config


@keras.saving.register_keras_serializable(package="arnn_tf")
class LinearLabelMap(keras.layers.Layer):
    """A learned h_g: a linear map from the backbone's logits to the task's class logits, then
    a softmax (AutoVP's "FullyMap", ICLR 2024). It trains together with the program.

    Adam moves each parameter by about the learning rate per step, whatever the gradient's
    scale, so the map's parameters are stored divided by ``rate_scale`` (kernel =
    ``rate_scale`` x stored): with one optimiser and one schedule, the map learns at
    ``rate_scale`` times the program's rate (0.2: 0.01 beside W's 0.05).

    ``initial_groups`` starts the map from a fixed one: weight 1 from each ImageNet class of
    ``groups[k]`` to task class k, so with one class per group it begins as exactly that
    `LabelMapping`. Without it the kernel starts as Keras' Dense default (Glorot uniform,
    drawn from ``seed``).
    """

    def __init__(
        self,
        num_classes: int,
        num_source_classes: int = 1000,
        initial_groups: Sequence[Sequence[int]] | None = None,
        rate_scale: float = 0.2,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "label_mapping")
        super().__init__(**kwargs)
        if num_classes < 1 or not rate_scale > 0:
            raise ValueError(
                f"a learned map needs at least one class and a rate scale > 0, got "
                f"{num_classes} classes and rate scale {rate_scale}"
            )
        self._num_classes = int(num_classes)
        self.num_source_classes = int(num_source_classes)
        self.rate_scale = float(rate_scale)
        self.stored_kernel = self.add_weight(
            name="stored_kernel",
            shape=(self.num_source_classes, self._num_classes),
            initializer=keras.initializers.GlorotUniform(seed),
            dtype="float32",
        )
        self.stored_bias = self.add_weight(
            name="stored_bias", shape=(self._num_classes,), initializer="zeros", dtype="float32"
        )
        self.stored_kernel.assign(self.stored_kernel / self.rate_scale)
        if initial_groups is not None:
            self.set_groups(initial_groups)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def set_groups(self, groups: Sequence[Sequence[int]]) -> None:
        """Restarts the map from the fixed map ``groups`` (see the class docstring)."""
        if len(groups) != self._num_classes:
            raise ValueError(
                f"the map has {self._num_classes} task classes, got {len(groups)} groups"
            )
        kernel = np.zeros((self.num_source_classes, self._num_classes), dtype="float32")
        for task_class, group in enumerate(groups):
            kernel[[int(c) for c in group], task_class] = 1.0
        self.stored_kernel.assign(kernel / self.rate_scale)
        self.stored_bias.assign(np.zeros(self._num_classes, dtype="float32"))

    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """(kernel [source classes, task classes], bias [task classes]) as the map applies them."""
        return (
            keras.ops.convert_to_numpy(self.stored_kernel.value) * self.rate_scale,
            keras.ops.convert_to_numpy(self.stored_bias.value) * self.rate_scale,
        )

    def set_parameters(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        """Sets the map to apply ``kernel`` and ``bias`` (as `parameters` returns them)."""
        if kernel.shape != tuple(self.stored_kernel.shape) or bias.shape != (self._num_classes,):
            raise ValueError(
                f"a learned map of {self.num_source_classes} -> {self._num_classes} "
                f"classes needs a kernel {tuple(self.stored_kernel.shape)} and a bias "
                f"({self._num_classes},), got {kernel.shape} and {bias.shape}"
            )
        self.stored_kernel.assign(np.asarray(kernel, "float32") / self.rate_scale)
        self.stored_bias.assign(np.asarray(bias, "float32") / self.rate_scale)

    def call(self, logits: Any) -> Any:
        return self.probabilities(logits)

    def probabilities(
        self, logits: Any, first_class: int = 0, num_classes: int | None = None
    ) -> Any:
        """The probabilities of task classes ``first_class`` .. ``first_class + num_classes - 1``:
        a softmax over those classes' outputs alone (one part of a multi-part task)."""
        num_classes = self._num_classes - first_class if num_classes is None else int(num_classes)
        if first_class < 0 or num_classes < 1 or first_class + num_classes > self._num_classes:
            raise ValueError(
                f"classes {first_class}..{first_class + num_classes - 1} are not "
                f"within the map's {self._num_classes} classes"
            )
        stop = first_class + num_classes
        kernel = self.stored_kernel[:, first_class:stop] * self.rate_scale
        bias = self.stored_bias[first_class:stop] * self.rate_scale
        return ops.softmax(ops.matmul(ops.cast(logits, "float32"), kernel) + bias, axis=-1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], self._num_classes)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_classes=self._num_classes,
            num_source_classes=self.num_source_classes,
            rate_scale=self.rate_scale,
        )
        return config
