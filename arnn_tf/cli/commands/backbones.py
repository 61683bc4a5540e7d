"""``arnn backbones``: the registry's backbones, their input sizes and offline weights."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``arnn backbones`` to the sub-parsers ``commands``."""
    return commands.add_parser("backbones", help="list the backbones")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs ``arnn backbones``; prints a table and returns its rows."""
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
