"""A zoom that travels: every ``travel`` frames the dream leans toward the next class family.

Leg 0 dreams what the picture itself suggests; leg j >= 1 adds ``family:F@weight`` to the frame's targets, F the
j-th of ``engine.families.TRAVEL_ORDER`` (cycling), so a long zoom passes through birds, buildings, fish, flowers
and more while the layer objective keeps the look. Frames inherit the previous dream, so each family grows out of
the last one's forms over a few frames instead of cutting.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.families import TRAVEL_ORDER

#: The family term's weight against the (square) layer objective: its gradient is ~100x smaller than the layer's.
DEFAULT_TRAVEL_WEIGHT = 150.0


def family_at(travel: int, k: int) -> str | None:
    """The class family frame ``k`` leans toward (None: the first leg, or travel off)."""
    if travel <= 0 or k < travel:
        return None
    return TRAVEL_ORDER[(k // travel - 1) % len(TRAVEL_ORDER)]


def travel_targets(travel: int, weight: float, k: int, targets: Sequence[str]) -> list[str]:
    """Frame ``k``'s target specs: the given ones plus its leg's family."""
    family = family_at(travel, k)
    return list(targets) if family is None else [*targets, f"family:{family}@{weight:g}"]
