"""A saved program and the task to run it on, as ``evaluate``, ``predict`` and ``show`` load
them; TensorFlow is imported only when they are called."""

from __future__ import annotations

from typing import Any


def program_task(saved: Any, spec: str | None, data_dir: str | None) -> Any:
    """The task to run a saved program on: ``spec``, else the one it was trained on."""
    from arnn_tf.tasks import get_task

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
    if task.image_shape != saved.task_image_shape or list(task.class_names) != saved.class_names:
        raise ValueError(
            f"task {task.name!r} ({task.image_shape}, {task.num_classes} classes) does not match "
            f"the program's task {saved.task_name!r} ({saved.task_image_shape}, "
            f"{len(saved.class_names)} classes)"
        )
    return task


def with_flip_average(saved: Any, flip_average: bool | None) -> Any:
    """The saved program, with its ``flip_average`` replaced where the command line sets it."""
    import dataclasses

    return saved if flip_average is None else dataclasses.replace(saved, flip_average=flip_average)
