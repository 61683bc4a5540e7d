"""The `arnn` command's options, importing nothing heavy.

Building the parser needs only the settings' names and defaults (`arnn_tf.settings`), never
TensorFlow, so `arnn --help` and `arnn --version` answer at once and every option's value is
checked before anything starts. The commands themselves live in `arnn_tf.cli`.
"""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf import __version__
from arnn_tf.arguments import (
    non_negative_float,
    non_negative_int,
    open_unit_fraction,
    positive_float,
    positive_int,
    unit_fraction,
)
from arnn_tf.settings import (
    AUGMENTATIONS,
    CROP_PADDING,
    DEFAULT_CONCEAL_SCALE,
    DEFAULT_MAX_PIXELS,
    DEFAULT_SPACE_FILE,
    DEFAULT_TRIAL_STEPS,
    LABEL_MAP_HELP,
    LOSSES,
    LR_SCHEDULES,
    MAX_VALIDATION_SIZE,
    PRECISIONS,
    STRATEGIES,
    TUNERS,
    checked_augmentations,
)
from arnn_tf.black_box.defaults import DEFAULT_PROGRAM_LR_SCALE
from arnn_tf.recipes import DEFAULT_RECIPE, FIELDS as RECIPE_FIELDS, RECIPES
from arnn_tf.serving import DEFAULT_RETRIES, DEFAULT_TIMEOUT

DEFAULT_BACKBONE = "efficientnet_lite0"


def _add_backbone_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backbone", default=DEFAULT_BACKBONE, help="registry name (see `arnn backbones`)"
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet', 'none' (untrained ablation) or a Keras weights file",
    )


def _augmentations(text: str) -> tuple[str, ...]:
    """``--augment flip,crop`` as a tuple of known augmentation names, checked before any work."""
    if text.strip().lower() == "none":
        return ()
    try:
        return checked_augmentations(
            tuple(name.strip() for name in text.split(",") if name.strip())
        )
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _add_flip_average_override(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image's probabilities with its mirror image's (twice the cost); "
        "default: as the program was saved",
    )


def build_parser() -> argparse.ArgumentParser:
    """Every `arnn` command's options; ``args.command`` names the command chosen."""
    parser = argparse.ArgumentParser(
        prog="arnn", description="Adversarial reprogramming of frozen ImageNet classifiers."
    )
    parser.add_argument("--version", action="version", version=f"arnn-tf {__version__}")
    parser.add_argument(
        "--verbose", action="store_true", help="also show TensorFlow's own start-up and log lines"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    _add_train_parser(commands)
    _add_program_parsers(commands)
    _add_network_parsers(commands)
    _add_export_parser(commands)
    _add_query_parser(commands)
    _add_tune_parser(commands)
    return parser


def _add_program_parsers(commands: Any) -> None:
    """``arnn evaluate``, ``predict`` and ``show``: what a saved program does on data."""
    evaluate = commands.add_parser(
        "evaluate", help="accuracy of a saved program on a task's test split"
    )
    evaluate.add_argument("--program", required=True, help="a saved-program folder (DIR/program)")
    evaluate.add_argument("--task", help="default: the task the program was trained on")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--batch-size", type=positive_int, default=64)
    evaluate.add_argument("--data-dir")
    _add_flip_average_override(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON")

    predict = commands.add_parser("predict", help="classify image files with a saved program")
    predict.add_argument("--program", required=True)
    predict.add_argument("images", nargs="+")
    _add_flip_average_override(predict)
    predict.add_argument("--json", action="store_true")

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
    show.add_argument("--data-dir", help="where TFDS keeps data sets (default: TFDS's own)")


def _add_network_parsers(commands: Any) -> None:
    """``arnn classify``, ``backbones`` and ``bench``: the backbones themselves."""
    classify = commands.add_parser(
        "classify", help="a backbone's own ImageNet top-k for image files"
    )
    classify.add_argument("images", nargs="+")
    _add_backbone_arguments(classify)
    classify.add_argument("--top", type=positive_int, default=5)
    classify.add_argument("--json", action="store_true")

    commands.add_parser("backbones", help="list the backbones")

    bench = commands.add_parser("bench", help="time training steps: images/second and peak memory")
    bench.add_argument("--backbone", default=DEFAULT_BACKBONE)
    bench.add_argument("--weights", default="imagenet")
    bench.add_argument("--batch-size", type=positive_int, default=32)
    bench.add_argument(
        "--steps", type=positive_int, default=20, help="timed steps, after --warmup untimed ones"
    )
    bench.add_argument("--warmup", type=non_negative_int, default=3)
    bench.add_argument(
        "--image-size", type=positive_int, default=32, help="task image size (square, RGB)"
    )
    bench.add_argument("--precision", default="float32", choices=PRECISIONS)
    bench.add_argument(
        "--jit",
        default="auto",
        choices=("auto", "on", "off"),
        help="XLA: auto (Keras' choice: on for GPUs, off on CPU-only machines)",
    )
    bench.add_argument("--json", action="store_true")


def _add_train_parser(commands: Any) -> None:
    """``arnn train``: a recipe, single recipe fields overriding it, and how the run runs."""
    train = commands.add_parser(
        "train",
        help="learn a program for a task",
        description="Train the recipe (default: %s). Each option below --recipe overrides one of "
        "its fields; options left out keep the recipe's values." % DEFAULT_RECIPE,
    )
    train.add_argument(
        "--recipe",
        default=DEFAULT_RECIPE,
        metavar="NAME|FILE|PROGRAM",
        help=f"a named recipe ({', '.join(RECIPES)}), a recipe JSON file, or a saved "
        f"program (to rerun its recipe); default {DEFAULT_RECIPE}",
    )
    fields = train.add_argument_group("recipe fields")
    field = _recipe_field_adder(fields)
    field(
        "--task",
        help="counting, mnist, cifar10, shuffled_mnist, tfds:NAME, folder:PATH, "
        "shuffled:TASK (fixed pixel permutation) or A+B (one program for several)",
    )
    field("--backbone", help="registry name (see `arnn backbones`)")
    field("--weights", help="'imagenet', 'none' (untrained ablation) or a Keras weights file")
    length = fields.add_mutually_exclusive_group()
    _recipe_field_adder(length)("--steps", type=positive_int, help="training batches")
    _recipe_field_adder(length)(
        "--epochs", type=positive_int, help="passes over the training split"
    )
    _add_schedule_fields(field)
    _add_map_and_data_fields(field)
    _add_placement_fields(field)
    field("--seed", type=non_negative_int)
    _add_black_box_fields(train)
    _add_run_options(train)


def _add_schedule_fields(field: Any) -> None:
    """The optimiser's recipe fields: batch, rate, schedule, warmup, lambda, EMA."""
    field("--batch-size", type=positive_int)
    field("--lr", dest="learning_rate", type=positive_float, help="Adam learning rate")
    field(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="paper: x0.96 every 2 epochs; cosine: decays to 0 at the last step",
    )
    field(
        "--warmup-steps",
        type=non_negative_int,
        help="with the cosine schedule: first raise the rate linearly from 0 over this many "
        "steps (steadies a warm start from --init-program)",
    )
    field("--l2", type=non_negative_float, help="lambda, the weight of ||W||^2")
    field(
        "--loss",
        choices=LOSSES,
        help="cross_entropy (the paper's) or focal: (1 - p)^GAMMA times it (BAR's), which "
        "weighs up the examples the program gets wrong",
    )
    field("--focal-gamma", type=non_negative_float, metavar="GAMMA", help="the focal loss's gamma")
    field(
        "--program-lr-scale",
        type=_or_none(positive_float),
        metavar="S|none",
        help="step W at S times the learning rate (a learned map keeps its own, a fifth of "
        "it); below 1 steadies a noisy gradient; none: the default, 1, or "
        f"{DEFAULT_PROGRAM_LR_SCALE} with --black-box",
    )
    field(
        "--ema",
        type=open_unit_fraction,
        metavar="MOMENTUM",
        help="keep an exponential moving average of W with this momentum (e.g. 0.99) and save it",
    )


def _add_map_and_data_fields(field: Any) -> None:
    """The label map, augmentation and the on/off switches."""
    field("--label-map", help=LABEL_MAP_HELP)
    field(
        "--augment",
        type=_augmentations,
        metavar="LIST",
        help=f"training-time augmentation of the task images, comma-separated: "
        f"{', '.join(AUGMENTATIONS)} (random left-right flip; random shift by up to "
        f"{CROP_PADDING} pixels); 'none' for none",
    )
    _add_recipe_switches(field)


def _add_placement_fields(field: Any) -> None:
    """Where the task image and the program go in the frame, and concealment."""
    field(
        "--image-size",
        type=positive_int,
        help="resize task images to this square size before placing them",
    )
    field(
        "--border-width",
        type=positive_int,
        help="confine the program to a band this wide at the frame's edge",
    )
    field(
        "--linf-bound",
        type=positive_float,
        help="bound |P| by this, in units of the [-1, 1] input range",
    )
    field(
        "--conceal",
        metavar="HOST_IMAGE",
        help="hide the task image, tiled and pixel-shuffled, and the program in this photo (the "
        "paper's concealment ablation); rerunning to resume needs the same photo",
    )
    field(
        "--conceal-scale",
        type=unit_fraction,
        metavar="ALPHA",
        help="with --conceal: X_adv = clip(photo + ALPHA * (tanh(W) + task image)), so the "
        f"photo changes by at most ALPHA times the pixel range (default {DEFAULT_CONCEAL_SCALE})",
    )


def _add_black_box_fields(train: argparse.ArgumentParser) -> None:
    """The trainer switch and the zeroth-order estimator's recipe fields."""
    group = train.add_argument_group(
        "black-box training",
        "learn W from the network's answers alone (BAR's zeroth-order gradient estimate): "
        "each step queries batch x (1 + Q) frames, batch x (1 + 2Q) antithetic",
    )
    field = _recipe_field_adder(group)
    field(
        "--black-box",
        action=argparse.BooleanOptionalAction,
        help="train through queries to the backbone (for now in this process), never its "
        "gradients; --no-black-box: backpropagate (white box)",
    )
    field("--directions", type=positive_int, metavar="Q", help="random directions per step")
    field("--beta", type=positive_float, help="the step along each direction (W's units)")
    field(
        "--antithetic",
        action=argparse.BooleanOptionalAction,
        help="also query W - beta U for each direction: a better estimate at twice the queries",
    )
    field(
        "--zo-resolution",
        type=_or_none(positive_int),
        metavar="C|none",
        help="draw directions on a C x C x 3 grid upsampled to the frame (fewer, smoother "
        "dimensions to explore); none: the frame's own resolution",
    )
    field(
        "--max-queries",
        type=_or_none(positive_int),
        metavar="N|none",
        help="stop before a step would take this process's queries (frames) past N",
    )


def _or_none(parse: Any) -> Any:
    """``parse``, with 'none' read as None."""

    def parse_or_none(text: str) -> Any:
        return None if text.strip().lower() == "none" else parse(text)

    parse_or_none.__name__ = parse.__name__
    return parse_or_none


def _recipe_field_adder(group: Any) -> Any:
    """``add_argument`` for a recipe field: left out, it leaves no attribute, so the recipe's
    value stands."""

    def add(*flags: str, **options: Any) -> None:
        group.add_argument(*flags, default=argparse.SUPPRESS, **options)

    return add


def _add_recipe_switches(field: Any) -> None:
    for flag, help_text in (
        (
            "--flip-average",
            "the saved program answers at inference (the final test, evaluate, "
            "predict, export) with the mean over each image and its mirror "
            "image, at twice the cost; training steps are unchanged (for "
            "mirror-symmetric classes such as photos, not digits)",
        ),
        (
            "--freeze-program",
            "hold W at its start (zero, or --init-program's) and train only a "
            "learned label map: the control for --label-map linear",
        ),
        (
            "--full-program",
            "add the program over the task image too (use with --image-size up to the frame)",
        ),
    ):
        field(flag, action=argparse.BooleanOptionalAction, help=help_text)


def _add_run_options(train: argparse.ArgumentParser) -> None:
    """Where and how the run runs: nothing here changes what it learns."""
    run = train.add_argument_group("the run")
    run.add_argument("--out", help="output folder (default: runs/TASK-BACKBONE)")
    run.add_argument(
        "--max-minutes",
        type=positive_float,
        help="stop training after this long, then evaluate and save",
    )
    run.add_argument(
        "--init-program",
        metavar="PROGRAM",
        help="start from this saved program's W instead of zero (same backbone and "
        "program options), e.g. a second schedule after a finished run",
    )
    run.add_argument("--data-dir", help="where TFDS keeps data sets (default: TFDS's own)")
    run.add_argument(
        "--strategy",
        default="auto",
        choices=STRATEGIES,
        help="auto: mirrored over several local GPUs, else one device; "
        "multi_worker reads TF_CONFIG",
    )
    run.add_argument("--precision", default="float32", choices=PRECISIONS)
    run.add_argument("--logdir", help="TensorBoard log folder (default: OUT/logs)")
    run.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=100,
        help="steps between checkpoints in OUT/checkpoint; rerunning the command resumes",
    )
    run.add_argument(
        "--query-url",
        metavar="URL",
        help="with --black-box: query the backbone served by TensorFlow Serving at this REST "
        "base URL (e.g. http://host:8501; see arnn export --backbone) instead of in-process",
    )
    run.add_argument("--query-model", default="arnn", help="its model name (default: arnn)")
    run.add_argument(
        "--query-timeout", type=positive_float, default=30.0, help="seconds per request"
    )


def recipe_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe fields given on the command line (``arnn train``'s); ``--black-box`` sets
    the ``trainer`` field."""
    overrides = {name: getattr(args, name) for name in RECIPE_FIELDS if hasattr(args, name)}
    if hasattr(args, "black_box"):
        overrides["trainer"] = "black_box" if args.black_box else "white_box"
    return overrides


def _add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``arnn export`` to the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "export", help="export saved programs as a TensorFlow Serving SavedModel"
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--program",
        action="append",
        help="a saved-program folder; repeat to export several programs on one backbone",
    )
    what.add_argument(
        "--backbone",
        help="export this backbone alone (X_adv frames in, logits out): the model a "
        "black-box run queries",
    )
    parser.add_argument(
        "--weights", default="imagenet", help="with --backbone: 'imagenet', 'none' or a file"
    )
    parser.add_argument(
        "--out", required=True, help="the model's base folder; the export goes to OUT/VERSION"
    )
    parser.add_argument(
        "--version", type=positive_int, help="version number (default: the next free one)"
    )
    parser.add_argument(
        "--name",
        action="append",
        help="signature name of each program, in --program order (default: its task name)",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help="largest encoded image predict_bytes accepts, height x width "
        f"(default {DEFAULT_MAX_PIXELS})",
    )
    return parser


def _add_query_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``arnn query`` to the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "query", help="classify image files with a TensorFlow Serving model server"
    )
    parser.add_argument("images", nargs="+")
    parser.add_argument(
        "--url",
        default="http://localhost:8501",
        help="REST base URL, or host:port of the gRPC API with --grpc "
        "(default: http://localhost:8501)",
    )
    parser.add_argument("--grpc", action="store_true", help="use gRPC (needs the serving extra)")
    parser.add_argument(
        "--model", default="arnn", help="the model's name on the server (default: arnn)"
    )
    parser.add_argument(
        "--version", type=positive_int, help="a model version (default: the server's latest)"
    )
    parser.add_argument(
        "--signature",
        default="predict_bytes",
        help="string-input signatures get the files' bytes, uint8 ones decoded pixels "
        "(default: predict_bytes)",
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=DEFAULT_TIMEOUT, help="seconds per request"
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        default=DEFAULT_RETRIES,
        help="retries on connection errors and 5xx",
    )
    parser.add_argument("--json", action="store_true")
    return parser


def _add_tune_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``arnn tune``: a base recipe, the fields the space file varies, and the search."""
    base = "paper"
    tune = subparsers.add_parser(
        "tune",
        help="search recipe fields with Keras Tuner",
        description=f"Search the recipe fields the space file names, around a base recipe "
        f"(default: {base}); the best trial is saved as a recipe to train with "
        "arnn train --recipe.",
    )
    tune.add_argument(
        "--recipe",
        default=base,
        metavar="NAME|FILE|PROGRAM",
        help=f"the base recipe: a named recipe ({', '.join(RECIPES)}), a recipe "
        f"JSON file or a saved program; default {base}",
    )
    tune.add_argument(
        "--task",
        help="default: the recipe's (counting, mnist, cifar10, "
        "shuffled_mnist, tfds:NAME or folder:PATH)",
    )
    tune.add_argument("--backbone", help="default: the recipe's (see `arnn backbones`)")
    tune.add_argument(
        "--weights", help="default: the recipe's ('imagenet', 'none' or a Keras weights file)"
    )
    tune.add_argument("--seed", type=non_negative_int, help="default: the recipe's")
    _add_search_options(tune)
    return tune


def _add_search_options(tune: argparse.ArgumentParser) -> None:
    """How ``arnn tune`` searches: the tuner, trials, their length, objective and space."""
    tune.add_argument("--tuner", choices=TUNERS, default="random")
    tune.add_argument(
        "--max-trials",
        type=positive_int,
        default=10,
        help="trials in all (rerun with more to extend a search)",
    )
    length = tune.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=positive_int,
        help=f"training batches per trial (default {DEFAULT_TRIAL_STEPS})",
    )
    length.add_argument(
        "--epochs", type=positive_int, help="passes over the training split per trial"
    )
    tune.add_argument(
        "--objective",
        default="val_accuracy",
        help="a metric of the trials, e.g. val_accuracy or val_loss",
    )
    tune.add_argument(
        "--space",
        default=str(DEFAULT_SPACE_FILE),
        help="search-space JSON file: recipe fields and their values (tuning/README.md)",
    )
    tune.add_argument(
        "--val-size",
        type=positive_int,
        help=f"train images held out to score trials (default 10%%, at most {MAX_VALIDATION_SIZE})",
    )
    tune.add_argument(
        "--out", required=True, help="search folder; rerun with the same one to resume"
    )
    tune.add_argument("--data-dir", help="where TFDS keeps data sets (default: TFDS's own)")
