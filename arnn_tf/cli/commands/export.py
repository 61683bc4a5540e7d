"""``arnn export``: saved programs, or a backbone alone, as a TensorFlow Serving SavedModel."""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.cli.arguments import positive_int
from arnn_tf.settings import DEFAULT_MAX_PIXELS


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn export`` to the sub-parsers ``commands``."""
    parser = commands.add_parser(
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
        "--frame-size",
        type=positive_int,
        help="with --backbone: take n x n frames instead of the backbone's own size (the "
        "frame of a run trained with --frame-size n)",
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``arnn export``; prints and returns the version folder and its signatures."""
    from arnn_tf.export.backbone import FRAMES, export_backbone
    from arnn_tf.export.names import program_names, signature_names
    from arnn_tf.export.writer import export_programs
    from arnn_tf.programs.saved import SavedProgram

    if args.frame_size is not None and args.backbone is None:
        raise ValueError("--frame-size goes with --backbone; a saved program keeps its own frame")
    if args.backbone is not None:
        path = export_backbone(
            args.backbone,
            args.weights,
            args.out,
            input_size=args.frame_size,
            version=args.version,
        )
        print(
            f"exported backbone {args.backbone} to {path}; signature serving_default: "
            f"{FRAMES} (X_adv, float32 in [-1, 1]) -> logits"
        )
        return {"path": str(path), "signatures": ["serving_default"]}
    programs = [SavedProgram.load(p) for p in args.program]
    path = export_programs(
        programs, args.out, version=args.version, max_pixels=args.max_pixels, names=args.name
    )
    signatures = signature_names(program_names(programs, args.name), programs)
    print(f"exported to {path}; signatures: {', '.join(signatures)}")
    return {"path": str(path), "signatures": signatures}
