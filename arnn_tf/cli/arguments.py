"""Value types for the command line's numeric options, so a bad value is a one-line error.

argparse calls these on the text the user typed; an `argparse.ArgumentTypeError` becomes
``arnn CMD: error: argument --flag: MESSAGE`` before anything is built or downloaded.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _checked(kind: type, holds: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text, kind)
        if not holds(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    parse.__name__ = wanted  # argparse names the type in some messages
    return parse


positive_int = _checked(int, lambda value: value >= 1, "a positive integer")
non_negative_int = _checked(int, lambda value: value >= 0, "an integer >= 0")
positive_float = _checked(float, lambda value: value > 0, "a number > 0")
non_negative_float = _checked(float, lambda value: value >= 0, "a number >= 0")
unit_fraction = _checked(float, lambda value: 0 < value <= 1, "a number in (0, 1]")
momentum = _checked(float, lambda value: 0 <= value < 1, "a number in [0, 1)")
open_unit_fraction = _checked(
    float, lambda value: 0 < value < 1, "a number strictly between 0 and 1"
)
