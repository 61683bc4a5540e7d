"""``arnn show``: a PNG of a program and of test images as the network sees them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from arnn_tf.cli.arguments import positive_int
from arnn_tf.cli.commands.options import add_data_dir_argument
from arnn_tf.cli.commands.saved import program_task


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn show`` to the sub-parsers ``commands``."""
    show = commands.add_parser("show", help="draw a program and what the network sees, as a PNG")
    show.add_argument("--program", required=True, help="a saved-program folder")
    show.add_argument("--task", help="default: the task the program was trained on")
    show.add_argument(
        "--examples",
        type=positive_int,
        default=3,
        help="test images to show the program on (default 3)",
    )
    show.add_argument("--out", help="PNG file (default: PROGRAM/program.png)")
    add_data_dir_argument(show)
    return show


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``arnn show``; prints and returns the picture's path."""
    from arnn_tf.models.pictures import program_picture, save_picture
    from arnn_tf.programs.saved import SavedProgram

    saved = SavedProgram.load(args.program)
    task = program_task(saved, args.task, args.data_dir)
    import keras

    examples = args.examples * len(task.part_tasks)  # that many of each part
    ((inputs, labels),) = list(task.sample("test", args.examples, examples, shuffle=False))
    inputs = keras.tree.map_structure(lambda t: t.numpy(), inputs)  # a multi-part task's: per part
    picture = program_picture(saved.build_model(), inputs, saved.class_names, labels.numpy())
    path = save_picture(picture, args.out or Path(args.program) / "program.png")
    print(
        f"the program and {len(labels)} {task.name} test examples as the network sees them: {path}"
    )
    return {"path": str(path)}
