"""A saved program and the task to run it on, as ``evaluate``, ``predict`` and ``show`` load
them; TensorFlow is imported only when they are called."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arnn_tf.programs.saved import SavedProgram
    from arnn_tf.tasks.base import Task


def program_task(saved: SavedProgram, spec: str | None, data_dir: str | None) -> Task:
    """The task to run a saved program on: ``spec``, else the one it was trained on (with
    the option that points at a copy of that data when it is not found here), as the
    program reads it (a text task tokenised by the program's vectorizer)."""
    from arnn_tf.tasks.specs import get_task

    try:
        task = get_task(spec or saved.task_name, data_dir=data_dir)
    except (FileNotFoundError, ValueError) as error:
        if spec:
            raise
        raise type(error)(
            f"{error}: the program was trained on task {saved.task_name!r}; "
            "to run it on a copy of that data here, pass --task "
            "(e.g. --task folder:PATH)"
        ) from None
    return saved.matching_task(task)


def with_flip_average(saved: SavedProgram, flip_average: bool | None) -> SavedProgram:
    """The saved program, with its ``flip_average`` replaced where the command line sets it."""
    return saved if flip_average is None else dataclasses.replace(saved, flip_average=flip_average)
