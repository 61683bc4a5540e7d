"""Options more than one `arnn` command takes, spelled and explained once."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_BACKBONE = "efficientnet_lite0"


def add_backbone_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backbone`` and ``--weights``: which frozen network, with which weights."""
    parser.add_argument(
        "--backbone", default=DEFAULT_BACKBONE, help="registry name (see `arnn backbones`)"
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet', 'none' (untrained ablation) or a Keras weights file",
    )


def add_flip_average_override(parser: argparse.ArgumentParser) -> None:
    """``--flip-average``: overrides a saved program's own setting, left out keeps it."""
    parser.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image's probabilities with its mirror image's (twice the cost); "
        "default: as the program was saved",
    )


def add_data_dir_argument(parser: Any) -> None:
    """``--data-dir``, on a parser or an argument group: where TFDS tasks find their data."""
    parser.add_argument("--data-dir", help="where TFDS keeps data sets (default: TFDS's own)")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: the command's result as JSON on stdout, for scripts."""
    parser.add_argument("--json", action="store_true", help="print JSON")
