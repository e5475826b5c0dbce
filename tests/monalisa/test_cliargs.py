"""The shared argparse pieces: one-line errors and checked numbers."""

import argparse

import pytest

from monalisa.cliargs import Parser, csv_floats, finite_float, positive_float, positive_int
from monalisa.errors import UsageError


def test_parser_errors_are_one_line_usage_errors():
    parser = Parser(prog="tool")
    parser.add_argument("--pitch-steps", type=int)
    with pytest.raises(UsageError, match=r"\(see tool --help\)"):
        parser.parse_args(["--pitch", "3"])  # abbreviations are refused


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "x"])
def test_finite_float_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        finite_float(text)


def test_positive_types():
    assert positive_int("3") == 3 and positive_float("0.5") == 0.5
    for bad in ("0", "-1", "nan", "one"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_float(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int("1.5")


def test_csv_floats():
    assert csv_floats("1,2,3,4.5") == (1, 2, 3, 4.5)
    for bad in ("1,,2", "1,x", "1,nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            csv_floats(bad)
