"""Target tasks: the `Task` protocol, and tasks made of several data sets (parts).

A task's spec (``counting``, ``folder:PATH``, ``A+B``) is read by `arnn_tf.tasks.specs.get_task`;
image tasks live in `arnn_tf.modalities.image`, text tasks in `arnn_tf.modalities.text`.
"""

from arnn_tf.tasks.base import SPLITS, Task, TaskPart
from arnn_tf.tasks.parts import MultiPartTask

__all__ = ["SPLITS", "MultiPartTask", "Task", "TaskPart"]
