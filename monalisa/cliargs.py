"""argparse pieces shared by every command line: one-line usage errors and checked number types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from monalisa.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (a UsageError, exit 2) instead of a usage dump.

    Abbreviated flags are refused: `--pitch 10` must not silently mean `--pitch-steps 10`.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def finite_float(text: str) -> float:
    """A float that is not nan or inf (they would pass every range check)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return value


def positive(kind: type, what: str) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` that must be finite and > 0."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


positive_int = positive(int, "a whole number >= 1")
positive_float = positive(float, "a number > 0")


def csv_floats(text: str) -> tuple[float, ...]:
    """Comma-separated finite numbers, e.g. ``--eyes 412,530,520,528``."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = (math.nan,)
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values
