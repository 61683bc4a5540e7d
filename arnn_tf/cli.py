"""The `arnn` command: train, evaluate and use adversarial programs from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from arnn_tf.parsers import build_parser, recipe_overrides
from arnn_tf.startup import import_tensorflow_quietly


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from arnn_tf.recipes import default_recipe, load_recipe
    from arnn_tf.runs import default_out, train

    name = args.recipe or default_recipe(getattr(args, "task", None))
    recipe = load_recipe(name).replace(**recipe_overrides(args))
    out = Path(args.out) if args.out else default_out(recipe)
    query = None
    if args.query_url is not None:
        from arnn_tf.black_box.rest_query import RestQuery

        query = RestQuery(args.query_url, args.query_model, timeout=args.query_timeout)
    metrics = train(
        recipe,
        out,
        query=query,
        init_program=args.init_program,
        max_minutes=args.max_minutes,
        data_dir=args.data_dir,
        strategy=args.strategy,
        precision=args.precision,
        logdir=args.logdir,
        checkpoint_every=args.checkpoint_every,
    )
    if (out / "metrics.json").exists():
        queries = f" after {metrics['queries']} queries" if "queries" in metrics else ""
        print(
            f"test accuracy {metrics['test_accuracy']:.4f}{queries}; "
            f"program saved to {out / 'program'}"
        )
    return metrics


def _program_task(saved: Any, spec: str | None, data_dir: str | None) -> Any:
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
    return saved.matching_task(task)


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from arnn_tf.programs import SavedProgram
    from arnn_tf.training import evaluate_program

    saved = _with_flip_average(SavedProgram.load(args.program), args.flip_average)
    task = _program_task(saved, args.task, args.data_dir)
    results = evaluate_program(
        saved.build_model(), task, args.split, args.batch_size, verbose=0 if args.json else 1
    )
    report = {
        "task": task.name,
        "split": args.split,
        "examples": task.num_examples(args.split),
        "flip_average": saved.flip_average,
        **results,
    }
    print(
        json.dumps(report)
        if args.json
        else f"{task.name} {args.split}: accuracy {results['accuracy']:.4f} "
        f"loss {results['loss']:.4f} on {report['examples']} examples"
        + (", each averaged with its mirror image" if saved.flip_average else "")
    )
    return report


def _show(args: argparse.Namespace) -> dict[str, Any]:
    from arnn_tf.pictures import program_picture, save_picture
    from arnn_tf.programs import SavedProgram

    saved = SavedProgram.load(args.program)
    task = _program_task(saved, args.task, args.data_dir)
    ((images, labels),) = list(task.sample("test", args.examples, args.examples, shuffle=False))
    picture = program_picture(
        saved.build_model(), images.numpy(), saved.class_names, labels.numpy()
    )
    path = save_picture(picture, args.out or Path(args.program) / "program.png")
    print(f"the program and {len(labels)} {task.name} test images as the network sees them: {path}")
    return {"path": str(path)}


def _with_flip_average(saved: Any, flip_average: bool | None) -> Any:
    """The saved program, with its ``flip_average`` replaced where the command line sets it."""
    import dataclasses

    return saved if flip_average is None else dataclasses.replace(saved, flip_average=flip_average)


def _predict(args: argparse.Namespace) -> list[dict[str, Any]]:
    from arnn_tf.predictions import print_predictions
    from arnn_tf.programs import SavedProgram

    saved = _with_flip_average(SavedProgram.load(args.program), args.flip_average)
    texts = list(args.text)
    if args.text_file:
        from arnn_tf.text.task import read_lines

        texts += read_lines(args.text_file)
    if bool(texts) == bool(args.images):
        raise ValueError("give image files, or --text/--text-file, not both")
    predictions = _text_predictions(saved, texts) if texts else _image_predictions(saved, args)
    print_predictions(predictions, args.json)
    return predictions


def _image_predictions(saved: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from arnn_tf.images import read_images
    from arnn_tf.predictions import prediction_record

    height, width, channels = saved.task_image_shape
    images = read_images(args.images, (height, width), channels)
    probabilities = saved.build_model().predict(images, verbose=0)
    return [
        prediction_record(path, int(row.argmax()), saved.class_names[int(row.argmax())], row)
        for path, row in zip(args.images, probabilities)
    ]


def _text_predictions(saved: Any, texts: list[str]) -> list[dict[str, Any]]:
    from arnn_tf.predictions import prediction_record
    from arnn_tf.text import restored_vectorizer
    from arnn_tf.text.model import text_probabilities

    if saved.input_state is None:
        raise ValueError(f"{saved.task_name!r} is an image program: give image files")
    vectorizer = restored_vectorizer(saved.input_state["vectorizer"])
    probabilities = text_probabilities(saved.build_model(), vectorizer, texts)
    return [
        prediction_record(
            text, int(row.argmax()), saved.class_names[int(row.argmax())], row, "text"
        )
        for text, row in zip(texts, probabilities)
    ]


def _classify(args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    import keras

    from arnn_tf.backbones import build_backbone
    from arnn_tf.backbones.imagenet_classes import imagenet_class_names
    from arnn_tf.images import read_images

    backbone = build_backbone(args.backbone, args.weights)
    size = int(backbone.input_shape[1])
    pixels = read_images(args.images, (size, size), 3)
    logits = backbone.predict(pixels.astype("float32") / 127.5 - 1.0, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    names = imagenet_class_names()
    top = max(1, min(args.top, probabilities.shape[1]))
    results = [
        [
            {"index": int(i), "label": names[i], "probability": round(float(row[i]), 6)}
            for i in row.argsort()[::-1][:top]
        ]
        for row in probabilities
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for path, entries in zip(args.images, results):
            print(
                f"{path}: "
                + ", ".join(f"{e['label']} ({e['index']}) {e['probability']:.3f}" for e in entries)
            )
    return results


def _backbones(args: argparse.Namespace) -> list[dict[str, Any]]:
    from arnn_tf.backbones import BACKBONES

    rows = [
        {
            "name": spec.name,
            "input_size": spec.input_size,
            "imagenet_weights_offline": spec.imagenet_weights_offline(),
            "description": spec.description,
        }
        for spec in BACKBONES.values()
    ]
    print(f"{'name':<20} {'input':>7}  {'offline':<8} description")
    for row in rows:
        size = f"{row['input_size']}x{row['input_size']}"
        offline = "yes" if row["imagenet_weights_offline"] else "no"
        print(f"{row['name']:<20} {size:>7}  {offline:<8} {row['description']}")
    return rows


def _bench(args: argparse.Namespace) -> dict[str, Any]:
    from arnn_tf.bench import benchmark_training

    jit = {"auto": "auto", "on": True, "off": False}[args.jit]
    result = benchmark_training(
        args.backbone,
        args.batch_size,
        args.steps,
        args.image_size,
        args.precision,
        args.warmup,
        args.weights,
        jit,
    )
    print(
        json.dumps(result)
        if args.json
        else f"{result['backbone']} batch {result['batch_size']} {result['precision']} "
        f"on {result['device']}: "
        f"{result['images_per_second']:.1f} images/s, peak memory {result['peak_memory_mb']:.0f} MB"
    )
    return result


def _handler(command: str) -> Callable[[argparse.Namespace], Any]:
    """The function that runs ``command``; the heavy modules are imported only here."""
    if command == "export":
        from arnn_tf.export import export_command

        return export_command
    if command == "query":
        from arnn_tf.serving import query_command

        return query_command
    if command == "tune":
        from arnn_tf.tuning import tune_command

        return tune_command
    return {
        "train": _train,
        "evaluate": _evaluate,
        "predict": _predict,
        "classify": _classify,
        "backbones": _backbones,
        "bench": _bench,
        "show": _show,
    }[command]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `arnn` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if not args.verbose:
        import_tensorflow_quietly()
    import tensorflow as tf

    from arnn_tf.images import image_read_error_in
    from arnn_tf.serving import ServingError
    from arnn_tf.training import TrainingDivergedError

    try:
        _handler(args.command)(args)
    except (ValueError, FileNotFoundError, ImportError, ServingError) as error:
        print(f"arnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except tf.errors.OpError as error:  # e.g. a folder task's bad image, met inside tf.data
        bad_image = image_read_error_in(error)
        if bad_image is None:
            raise
        print(f"arnn {args.command}: error: {bad_image}", file=sys.stderr)
        return 2
    except TrainingDivergedError as error:
        print(f"arnn {args.command}: stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"arnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
