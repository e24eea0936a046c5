"""A bench figure next to its floor, and the ratio a target holds it to."""

from dataclasses import dataclass


@dataclass
class Result:
    ours: float
    floor: float
    ratio: float
    target: str
    unit: str
    met: bool
    note: str = ""


def at_most(ours: float, floor: float, limit: float, unit: str, note: str = "") -> Result:
    ratio = ours / floor if floor else float("inf")
    return Result(
        round(ours, 3), round(floor, 3), round(ratio, 3), f"<= {limit}", unit, ratio <= limit, note
    )


def reported(ours: float, floor: float, unit: str, note: str = "") -> Result:
    """A figure with no target, shown next to its floor."""
    ratio = ours / floor if floor else float("inf")
    return Result(round(ours, 3), round(floor, 3), round(ratio, 3), "", unit, True, note)


def at_least(ours: float, floor: float, limit: float, unit: str, note: str = "") -> Result:
    ratio = ours / floor if floor else 0.0
    return Result(
        round(ours, 3), round(floor, 3), round(ratio, 3), f">= {limit}", unit, ratio >= limit, note
    )
