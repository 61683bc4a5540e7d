"""``arnn train``: learn a program for a task, from a recipe and options overriding its fields.

Each recipe field is an option of its own (left out, it leaves no attribute, so the recipe's
value stands); the run options say where and how the run runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from arnn_tf.black_box.defaults import DEFAULT_MAP_REFIT_EPOCHS, DEFAULT_PROGRAM_LR_SCALE
from arnn_tf.cli.arguments import (
    momentum,
    non_negative_float,
    non_negative_int,
    open_unit_fraction,
    positive_float,
    positive_int,
    unit_fraction,
)
from arnn_tf.cli.commands.options import add_data_dir_argument
from arnn_tf.recipes import DEFAULT_RECIPE, RECIPES, TEXT_LEVELS
from arnn_tf.recipes import FIELDS as RECIPE_FIELDS
from arnn_tf.settings import (
    AUGMENTATIONS,
    CROP_PADDING,
    DEFAULT_CONCEAL_SCALE,
    LABEL_MAP_HELP,
    LOSSES,
    LR_SCHEDULES,
    PART_SAMPLING,
    PRECISIONS,
    PROGRAM_UPDATES,
    STRATEGIES,
    checked_augmentations,
)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn train``: a recipe, single recipe fields overriding it, and how the run runs."""
    train = commands.add_parser(
        "train",
        help="learn a program for a task",
        description="Train the recipe (default: %s, or text for a text:PATH task). Each "
        "option below --recipe overrides one of its fields; options left out keep the "
        "recipe's values." % DEFAULT_RECIPE,
    )
    train.add_argument(
        "--recipe",
        metavar="NAME|FILE|PROGRAM",
        help=f"a named recipe ({', '.join(RECIPES)}), a recipe JSON file, or a saved "
        f"program (to rerun its recipe); default text for a text:PATH task, else "
        f"{DEFAULT_RECIPE}",
    )
    fields = train.add_argument_group("recipe fields")
    field = _recipe_field_adder(fields)
    field(
        "--task",
        help="counting, mnist, cifar10, shuffled_mnist, tfds:NAME, folder:PATH, "
        "text:PATH (text files), shuffled:TASK (fixed pixel permutation) or A+B (one "
        "program for several image tasks)",
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
    _add_text_fields(field)
    field("--seed", type=non_negative_int)
    _add_black_box_fields(train)
    _add_run_options(train)
    return train


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
        "--map-warmup-steps",
        type=_or_none(non_negative_int),
        metavar="N|none",
        help="hold W (and a text task's patch table) for the first N steps while a learned "
        "map learns alone (with --black-box those steps ask one frame an image); none: the "
        "default, 0, or half the steps with --black-box and a learned map",
    )
    field(
        "--program-momentum",
        type=_or_none(momentum),
        metavar="B|none",
        help="W's Adam first-moment decay, beta_1 in [0, 1); a longer memory (0.99) averages "
        "more steps; none: the default, Adam's 0.9",
    )
    field(
        "--program-update",
        choices=PROGRAM_UPDATES,
        help="how W steps: Adam (about the rate in every entry), SGD with Nesterov "
        "momentum (--program-momentum; a step as large as the gradient, for black-box "
        "estimates, BlackVIP's SPSA-GC), or, black-box with --code-dimension, CMA-ES over the "
        "code (--directions candidates a step, first spread by --beta; needs the cma package)",
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


def _add_text_fields(field: Any) -> None:
    """How a text task becomes a frame: tokens and their patches."""
    field(
        "--patch-size",
        type=positive_int,
        help="text tasks: each token's patch is this many pixels square (it must divide the "
        "frame's size; 16 on a 224 frame gives 196 token slots)",
    )
    field("--text-level", choices=TEXT_LEVELS, help="text tasks: tokens are words or characters")
    field(
        "--part-sampling",
        choices=PART_SAMPLING,
        help="tasks of several parts (A+B): draw each training example's part uniformly over "
        "the parts, or in proportion to their sizes",
    )


def _add_placement_fields(field: Any) -> None:
    """Where the task image and the program go in the frame, and concealment."""
    field(
        "--frame-size",
        type=positive_int,
        help="the frame's size n (the program and the backbone's input, n x n) in place of "
        "the backbone's own; smaller is faster (112: about a third of 224's time a step)",
    )
    field(
        "--image-size",
        type=positive_int,
        help="resize task images to this square size before placing them",
    )
    field(
        "--image-scale",
        type=unit_fraction,
        metavar="SHARE",
        help="resize task images to this share of the frame's side, square (in place of "
        "--image-size)",
    )
    field(
        "--code-dimension",
        type=_or_none(positive_int),
        metavar="D|none",
        help="write W as a fixed random projection of a code of D numbers (a program of low "
        "intrinsic dimension; black-box directions are then drawn in the code); none: W is "
        "the frame's own n x n x 3",
    )
    field(
        "--code-grid",
        type=positive_int,
        metavar="C",
        help="with --code-dimension, project the code onto a C x C x 3 grid, upsampled to the "
        "frame (default 16)",
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
        "paper's concealment ablation; a text task's token patches are blended into it); "
        "rerunning to resume needs the same photo",
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
        "--per-image-directions",
        action=argparse.BooleanOptionalAction,
        help="draw Q directions for each image of the batch, not one set for all: the same "
        "queries, a less noisy estimate",
    )
    field(
        "--map-refit-epochs",
        type=_or_none(non_negative_int),
        metavar="E|none",
        help="refit the learned map on the warmup's answers for E passes before W's first "
        "estimate (no queries); 0: no refit; none: the default, "
        f"{DEFAULT_MAP_REFIT_EPOCHS} after a warmup",
    )
    field(
        "--zo-resolution",
        type=_or_none(positive_int),
        metavar="C|none",
        help="draw directions on a C x C x 3 grid upsampled to the frame (fewer, smoother "
        "dimensions to explore); none: the frame's own resolution",
    )
    _add_estimate_fields(field)
    _add_stand_in_fields(field)
    field(
        "--max-queries",
        type=_or_none(positive_int),
        metavar="N|none",
        help="stop before a step would take this process's queries (frames) past N",
    )


def _add_estimate_fields(field: Any) -> None:
    """How an estimate of W's gradient is bounded and pooled, in the black-box group."""
    field(
        "--zo-clip",
        type=_or_none(positive_float),
        metavar="C|none",
        help="bound the norm of W's gradient estimate by C (ZIP's clipping); none: unbounded",
    )
    field(
        "--jacobian-memory",
        type=_or_none(positive_float),
        metavar="N|none",
        help="read W's estimate through the backbone's logit Jacobian pooled over the images "
        "and about N steps (no extra queries); none: each step's own estimate; with "
        "--guide-rank, the steps that Jacobian is pooled over (none: 50)",
    )
    field(
        "--guide-rank",
        type=_or_none(positive_int),
        metavar="K|none",
        help="draw a share of each step's directions in the top-K subspace of the logits' "
        "pooled Jacobian, the rest outside it (no extra queries); none: all in the whole space",
    )
    field(
        "--guide-share",
        type=float,
        metavar="S",
        help="the share of the directions drawn in the guide's subspace (default: 0.5)",
    )


def _add_stand_in_fields(field: Any) -> None:
    """The local stand-in network's recipe fields, in the black-box group."""
    field(
        "--stand-in",
        type=_or_none(str),
        metavar="BACKBONE|none",
        help="backpropagate W's gradient through this local network instead of estimating it "
        "(the map learns from the answers, one frame an image a step); none: estimate",
    )
    field(
        "--stand-in-rate",
        type=_or_none(positive_float),
        metavar="R|none",
        help="fit the stand-in to the answers of each step that trains W, Adam at rate R "
        "(no extra queries); none: hold it as it is",
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
            "hold W (and a text task's patch table) at its start (zero, or --init-program's) "
            "and train only a learned label map: the control for --label-map linear",
        ),
        (
            "--full-program",
            "add the program over the task image too (use with --image-size up to the frame)",
        ),
        (
            "--part-regions",
            "tasks of several parts (A+B): give each part its own share of the frame "
            "(square tiles dealt out at random), so no two parts' programs share an entry of W",
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
    add_data_dir_argument(run)
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
        help="with --black-box: query the backbone served by TensorFlow Serving (see arnn "
        "export --backbone) instead of in-process: at this REST base URL (http://host:8501) "
        "or gRPC target (grpc://host:8500)",
    )
    run.add_argument("--query-model", default="arnn", help="its model name (default: arnn)")
    run.add_argument(
        "--query-timeout", type=positive_float, default=30.0, help="seconds per request"
    )


def served_query(url: str, model: str, timeout: float) -> Any:
    """The query function for ``--query-url``: gRPC for ``grpc://HOST:PORT``, else REST."""
    if url.startswith("grpc://"):
        from arnn_tf.black_box.grpc_query import GrpcQuery

        return GrpcQuery(url.removeprefix("grpc://"), model, timeout=timeout)
    from arnn_tf.black_box.rest_query import RestQuery

    return RestQuery(url, model, timeout=timeout)


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


def recipe_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe fields given on the command line (``arnn train``'s); ``--black-box`` sets
    the ``trainer`` field."""
    overrides = {name: getattr(args, name) for name in RECIPE_FIELDS if hasattr(args, name)}
    if hasattr(args, "black_box"):
        overrides["trainer"] = "black_box" if args.black_box else "white_box"
    return overrides


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``arnn train``; prints the test accuracy and returns the metrics."""
    from arnn_tf.recipes import default_recipe, load_recipe
    from arnn_tf.runs import default_out, train

    name = args.recipe or default_recipe(getattr(args, "task", None))
    recipe = load_recipe(name).replace(**recipe_overrides(args))
    out = Path(args.out) if args.out else default_out(recipe)
    query = None
    if args.query_url is not None:
        query = served_query(args.query_url, args.query_model, args.query_timeout)
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
