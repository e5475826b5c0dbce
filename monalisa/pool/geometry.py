"""Pixel geometry shared by both stages: the patch rectangle and the grid's nearest-cell rule."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    """An axis-aligned pixel rectangle: x, y of the top-left corner, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices selecting this rectangle from an image array."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)

    def relative_to(self, outer: Rect) -> Rect:
        """This rectangle in the coordinates of ``outer``'s top-left corner (to paste a patch into a crop)."""
        return Rect(self.x - outer.x, self.y - outer.y, self.width, self.height)

    def fits_in(self, width: int, height: int) -> bool:
        return (self.width > 0 and self.height > 0 and self.x >= 0 and self.y >= 0
                and self.x + self.width <= width and self.y + self.height <= height)


def nearest_index(values: tuple[float, ...] | list[float], target: float) -> int:
    """Index of the value nearest ``target``; a tie goes to the one nearer the middle of the list, then the lower
    index, so an even grid's idle frame is a fixed, central-most cell."""
    middle = (len(values) - 1) / 2
    return min(range(len(values)), key=lambda i: (round(abs(values[i] - target), 9), abs(i - middle), i))
