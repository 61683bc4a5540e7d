"""The label-map layers: how a frozen ImageNet classifier's outputs become task classes.

`LabelMapping` reads the task's class probabilities off the ImageNet outputs through a fixed
map (h_g in Elsayed et al., 2019); `LinearLabelMap` learns a linear map on the logits. Both use
`keras.ops` only, so they run on any Keras backend, and round-trip through `get_config`. The
input side (encoders and the frame program) is in `arnn_tf.modalities.image.placement`,
`arnn_tf.layers.frame_program` and `arnn_tf.modalities.text`.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops


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

    def scores(self, logits: Any) -> Any:
        """Each task class's log of its summed exp-logits (a logsumexp over its group): the
        layer's output is their softmax, so scores of several maps compare on one scale."""
        mapped = ops.take(ops.cast(logits, "float32"), self.source_indices, axis=-1)
        top = ops.max(mapped, axis=-1, keepdims=True)
        return ops.log(ops.matmul(ops.exp(mapped - top), self.membership)) + top

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

    def scores(self, logits: Any) -> Any:
        """The task classes' logits, before the softmax (see `LabelMapping.scores`)."""
        kernel = self.stored_kernel * self.rate_scale
        return ops.matmul(ops.cast(logits, "float32"), kernel) + self.stored_bias * self.rate_scale

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
