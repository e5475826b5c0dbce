"""The PASS/FAIL line the benchmark scripts print for each measured number against its floor.

Imported as ``from _report import check``: running ``python benchmarks/X.py`` puts this folder on sys.path.
"""

from __future__ import annotations


def check(name: str, value: float, floor: str, ok: bool, unit: str = "", width: int = 42) -> bool:
    """Print one measured number with its unit, floor and PASS/FAIL; returns ``ok``."""
    print(f"{name:<{width}}{value:>10.3f} {unit:<9} floor {floor:<12} {'PASS' if ok else 'FAIL'}")
    return ok
