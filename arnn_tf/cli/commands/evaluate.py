"""``arnn evaluate``: a saved program's accuracy and loss on a split of its task."""

from __future__ import annotations

import argparse
import json
from typing import Any

from arnn_tf.cli.arguments import positive_int
from arnn_tf.cli.commands.options import (
    add_data_dir_argument,
    add_flip_average_override,
    add_json_argument,
)
from arnn_tf.cli.commands.saved import program_task, with_flip_average


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn evaluate`` to the sub-parsers ``commands``."""
    evaluate = commands.add_parser(
        "evaluate", help="accuracy of a saved program on a task's test split"
    )
    evaluate.add_argument("--program", required=True, help="a saved-program folder (DIR/program)")
    evaluate.add_argument("--task", help="default: the task the program was trained on")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--batch-size", type=positive_int, default=64)
    add_data_dir_argument(evaluate)
    add_flip_average_override(evaluate)
    add_json_argument(evaluate)
    return evaluate


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``arnn evaluate``; prints and returns the report."""
    from arnn_tf.programs.saved import SavedProgram
    from arnn_tf.training.evaluation import evaluate_parts, evaluate_program

    saved = with_flip_average(SavedProgram.load(args.program), args.flip_average)
    task = program_task(saved, args.task, args.data_dir)
    model = saved.build_model()
    results = evaluate_program(
        model, task, args.split, args.batch_size, verbose=0 if args.json else 1
    )
    report = {
        "task": task.name,
        "split": args.split,
        "examples": task.num_examples(args.split),
        "flip_average": saved.flip_average,
        **results,
    }
    if task.parts:
        report["accuracy_per_task"] = evaluate_parts(model, task, args.split, args.batch_size)
    print(json.dumps(report) if args.json else _summary(report))
    return report


def _summary(report: dict[str, Any]) -> str:
    """The report as a line (and one line a part, for a task of several)."""
    line = (
        f"{report['task']} {report['split']}: accuracy {report['accuracy']:.4f} "
        f"loss {report['loss']:.4f} on {report['examples']} examples"
        + (", each averaged with its mirror image" if report["flip_average"] else "")
    )
    parts = report.get("accuracy_per_task", {})
    return "\n".join([line, *(f"  {name}: accuracy {acc:.4f}" for name, acc in parts.items())])
