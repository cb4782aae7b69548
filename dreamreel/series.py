"""Schedules' per-frame values, checked against the option table: what a frame's option is (in the option's own
form), a --layer/--target spec with its scheduled weight filled in, and every frame's value of a schedule."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from .errors import DreamError
from .options import LIMITS, WEIGHT_LIMIT, weight_schedule
from .schedule import Schedule, ScheduleError


def frame_value(key: str, value: Any, frame: int = 0, frames: int = 1, fps: float = 12.0) -> Any:
    """A schedule's value at ``frame`` in the option's own form (lr: [(v, v)], steps: [n]); other values as given."""
    if not isinstance(value, Schedule):
        return value
    v = check_series(key, value, max(frames, frame + 1), fps, "--" + key.replace("_", "-"))[frame]
    if key in ("lr", "sigma"):
        return [(v, v)]
    if key == "steps":
        return [max(1, int(round(v)))]
    return v


def specs_at(specs: Sequence[str], key: str, frame: int, frames: int, fps: float) -> list[str]:
    """--layer/--target specs with each scheduled weight replaced by its value at ``frame`` (``block7@0.5``)."""
    out = []
    for spec in specs:
        schedule = weight_schedule(spec, key)
        if schedule is None:
            out.append(spec)
            continue
        values = _weight_series(schedule, max(frames, frame + 1), fps, f"--{key} {spec}")
        out.append(f"{spec[: len(spec) - len(schedule.text)]}{values[frame]:.6g}")
    return out


@functools.lru_cache(maxsize=64)
def _weight_series(schedule: Schedule, frames: int, fps: float, where: str) -> tuple[float, ...]:
    """A weight schedule's values (cached: a timeline asks for them at every frame)."""
    return tuple(check_series("weight", schedule, frames, fps, where))


def check_series(key: str, schedule, frames: int, fps: float, where: str) -> list[float]:
    """Every frame's value of a schedule, finite and in the option's range, or a one-line DreamError naming it."""
    try:
        values = schedule.series(frames, fps)
    except ScheduleError as exc:
        raise DreamError(f"{where}: {exc}", exc.hint) from None
    limit = WEIGHT_LIMIT if key == "weight" else LIMITS.get(key)
    for f, v in enumerate(values):
        if not math.isfinite(v) or (limit and not limit.holds(round(v) if key == "steps" else v)):
            raise DreamError(f"{where}: the schedule's value at frame {f} is {v:g}",
                             limit.hint() if limit else "not a finite number")
    return values
