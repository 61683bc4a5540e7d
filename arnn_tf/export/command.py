"""The ``arnn export`` command: parsed arguments in, an export and a printed summary out."""

from __future__ import annotations

import argparse
from typing import Any

from arnn_tf.export.backbone import FRAMES, export_backbone
from arnn_tf.export.names import program_names, signature_names
from arnn_tf.export.writer import export_programs
from arnn_tf.programs import SavedProgram


def export_command(args: argparse.Namespace) -> dict[str, Any]:
    """Runs ``arnn export``; prints and returns the version folder and its signatures."""
    if args.backbone is not None:
        path = export_backbone(args.backbone, args.weights, args.out, version=args.version)
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
