"""Numeric command-line values are checked with one-line errors before any work starts."""

import argparse

import pytest

from arnn_tf.cli.arguments import (
    non_negative_float,
    non_negative_int,
    open_unit_fraction,
    positive_float,
    positive_int,
    unit_fraction,
)
from arnn_tf.cli.main import main


@pytest.mark.parametrize("parse, good, bad", [
    (positive_int, ["1", "32"], ["0", "-3", "1.5", "x", ""]),
    (non_negative_int, ["0", "7"], ["-1", "nan"]),
    (positive_float, ["0.05", "1e-3"], ["0", "-1", "nan", "inf", "fast"]),
    (non_negative_float, ["0", "1e-6"], ["-1e-6", "-inf"]),
    (unit_fraction, ["0.1", "1"], ["0", "1.5"]),
    (open_unit_fraction, ["0.99"], ["0", "1", "-0.5"]),
])
def test_numeric_types_accept_good_values_and_refuse_bad_ones(parse, good, bad):
    for text in good:
        assert parse(text) == float(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="must be"):
            parse(text)


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
    (["--lr", "-1"], "argument --lr: must be a number > 0, got -1"),
    (["--steps", "0"], "argument --steps: must be a positive integer, got 0"),
    (["--image-size", "-4"], "argument --image-size: must be a positive integer, got -4"),
    (["--ema", "1"], "argument --ema: must be a number strictly between 0 and 1, got 1"),
    (["--l2", "nan"], "argument --l2: must be a finite number, got 'nan'"),
])
def test_train_refuses_bad_numbers_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--backbone", "tiny_cnn", "--weights", "none", *flags])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == f"arnn train: error: {message}"
