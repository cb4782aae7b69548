"""Zoom motion and keyframe timelines.

A ``Timeline`` holds keyframes: numbers (zoom, rotate, shift) are interpolated linearly between
keys, choices (layer, target, steps) switch at their key. ``Motion`` is the affine warp between
frames, done on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DreamError
from ..options import parse_value
from ..presets import read_toml

NUMERIC_KEYS = ("zoom", "rotate", "shift_x", "shift_y")
CHOICE_KEYS = ("layer", "target", "steps", "mask")  # a mask switches at its key


@dataclass(frozen=True)
class Motion:
    """Zoom about the centre (>1 moves in), rotation in degrees, and a shift in pixels, per frame."""

    zoom: float = 1.0
    rotate: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def from_values(cls, v: Mapping[str, Any]) -> "Motion":
        return cls(v.get("zoom", 1.0), v.get("rotate", 0.0), (v.get("shift_x", 0.0), v.get("shift_y", 0.0)))

    @property
    def identity(self) -> bool:
        return self.zoom == 1.0 and self.rotate == 0.0 and self.shift == (0.0, 0.0)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """Warp (1,3,H,W) with an affine sampling grid on the image's device (reflected borders)."""
        if self.identity:
            return image
        _, _, h, w = image.shape
        a = math.radians(self.rotate)
        s = 1.0 / self.zoom
        # output pixel -> input pixel, in normalised coordinates with the aspect ratio undone for rotation
        cos, sin = math.cos(a) * s, math.sin(a) * s
        theta = torch.tensor(
            [[cos, -sin * h / w, -2.0 * self.shift[0] / w], [sin * w / h, cos, -2.0 * self.shift[1] / h]],
            dtype=torch.float32, device=image.device,
        )[None]
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False).clamp(0, 1)


@dataclass
class Keyframe:
    frame: int
    values: dict[str, Any]


@dataclass
class Timeline:
    """Per-frame parameters from keyframes (sorted by frame)."""

    keys: list[Keyframe] = field(default_factory=list)

    @classmethod
    def constant(cls, **values) -> "Timeline":
        return cls([Keyframe(0, {k: v for k, v in values.items() if v is not None})])

    def with_defaults(self, **values) -> "Timeline":
        """Fill keys no keyframe sets with constants (the CLI flags)."""
        set_keys = {k for key in self.keys for k in key.values}
        missing = {k: v for k, v in values.items() if k not in set_keys and v is not None}
        if not self.keys:
            return Timeline.constant(**missing)
        first = Keyframe(self.keys[0].frame, {**missing, **self.keys[0].values})
        return Timeline([first] + self.keys[1:])

    def at(self, frame: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in NUMERIC_KEYS:
            pts = [(k.frame, float(k.values[name])) for k in self.keys if name in k.values]
            if not pts:
                continue
            if frame <= pts[0][0]:
                out[name] = pts[0][1]
            elif frame >= pts[-1][0]:
                out[name] = pts[-1][1]
            else:
                for (f0, v0), (f1, v1) in zip(pts, pts[1:]):
                    if f0 <= frame <= f1:
                        out[name] = v0 + (v1 - v0) * (frame - f0) / (f1 - f0)
                        break
        for name in CHOICE_KEYS:
            for k in self.keys:
                if name in k.values and k.frame <= frame:
                    out[name] = k.values[name]
            if name not in out:
                first = next((k.values[name] for k in self.keys if name in k.values), None)
                if first is not None:
                    out[name] = first
        return out

    def motion_at(self, frame: int) -> Motion:
        return Motion.from_values(self.at(frame))


def load_timeline(path: str | Path) -> Timeline:
    """A TOML timeline: ``[[key]]`` tables with ``frame`` and any of zoom, rotate, shift = [dx, dy], layer, target, steps.

    Every value goes through the option table's checks (``options.parse_value``), as a flag or preset value would.
    """
    p = Path(path)
    if not p.is_file():
        raise DreamError(f"timeline {str(p)!r} does not exist")
    _, data = read_toml(p, "timeline")
    if unknown := [k for k in data if k not in ("key", "description")]:
        raise DreamError(f"{p}: unknown top-level key {unknown[0]!r}", "a timeline holds [[key]] tables")
    keys = data.get("key")
    if not isinstance(keys, list) or not keys or not all(isinstance(t, dict) for t in keys):
        raise DreamError(f"{p}: no [[key]] tables", "see README: Timelines")
    out, frames = [], set()
    for i, table in enumerate(keys):
        where = f"{p}: key #{i + 1}"
        frame = table.get("frame")
        if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame <= 1_000_000:
            raise DreamError(f"{where}: 'frame' must be a whole number 0 to 1000000, not {frame!r}")
        if frame in frames:
            raise DreamError(f"{where}: a second key for frame {frame}")
        frames.add(frame)
        values = {}
        for name, value in table.items():
            at = f"{where}: {name!r}"
            if name == "frame":
                continue
            if name == "shift":
                if not (isinstance(value, list) and len(value) == 2):
                    raise DreamError(f"{where}: 'shift' must be [dx, dy]")
                values["shift_x"], values["shift_y"] = _number("shift", value, at)
            elif name in ("zoom", "rotate", "shift_x", "shift_y"):
                values[name] = _number("shift" if name.startswith("shift") else name, value, at)
            elif name in ("layer", "target"):
                values[name] = parse_value(name, value, at)
            elif name == "steps":
                steps = parse_value("steps", _whole(value, at), at)
                if len(steps) != 1:
                    raise DreamError(f"{at} must be one whole number >= 1 (each later frame's steps)")
                values[name] = steps[0]
            elif name == "mask":  # a mask file from this key on, or "none"
                if not isinstance(value, str):
                    raise DreamError(f"{where}: 'mask' must be a path or \"none\"")
                values[name] = value
            else:
                raise DreamError(f"{where}: unknown key {name!r}", "use frame, zoom, rotate, shift, layer, target, steps, mask")
        out.append(Keyframe(frame, values))
    return Timeline(sorted(out, key=lambda k: k.frame))


def _whole(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DreamError(f"{where} must be a whole number, not {value!r}")
    return value


def _number(key: str, value: Any, where: str):
    """A TOML number (or [dx, dy] for shift) through the option table's checks; floats out."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise DreamError(f"{where} must be a number, not {value!r}")
    parsed = parse_value(key, value, where)
    return tuple(float(v) for v in parsed) if isinstance(parsed, tuple) else float(parsed)
