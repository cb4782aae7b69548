"""Zoom motion and keyframe timelines.

A ``Timeline`` holds keyframes: numbers (zoom, rotate, shift, the 3D camera) are interpolated linearly between
keys, choices (layer, target, steps) switch at their key. A key may instead follow a schedule (a schedule
string, or a Parseq file's values: see ``schedule``), which sets it at every frame; ``bind`` evaluates the
schedules for a render's frames once, before any work. ``Motion`` is the warp between frames, done on the
device: the affine zoom/rotate/shift and, where a 3D key is set, the camera (``camera``), in one sampling grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DreamError
from ..options import ALIASES, SCHEDULE_KEYS, parse_value, weight_schedule
from ..presets import read_toml
from ..schedule import FrameTable, Schedule
from ..series import check_series, specs_at
from .camera import CAMERA_KEYS, Camera

NUMERIC_KEYS = ("zoom", "rotate", "shift_x", "shift_y", *CAMERA_KEYS)
CHOICE_KEYS = ("layer", "target", "steps", "mask")  # a mask switches at its key


@dataclass(frozen=True)
class Motion:
    """Zoom about the centre (>1 moves in), rotation in degrees, and a shift in pixels, per frame."""

    zoom: float = 1.0
    rotate: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    camera: Camera | None = None  # the 3D camera's move (None: no 3D key set)

    @classmethod
    def from_values(cls, v: Mapping[str, Any]) -> "Motion":
        return cls(v.get("zoom", 1.0), v.get("rotate", 0.0), (v.get("shift_x", 0.0), v.get("shift_y", 0.0)),
                   Camera.from_values(v))

    @property
    def identity(self) -> bool:
        return self.zoom == 1.0 and self.rotate == 0.0 and self.shift == (0.0, 0.0) and \
            (self.camera is None or self.camera.identity)

    def apply(self, image: torch.Tensor, depth: torch.Tensor | None = None) -> torch.Tensor:
        """Warp (1,3,H,W) with one sampling grid on the image's device (reflected borders): the camera's move over
        ``depth`` ((1,1,H,W) grey, white near; None: a flat picture), then the zoom, rotation and shift on top."""
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
        if self.camera is not None and not self.camera.identity:
            grid = self.camera.resample_grid(grid, depth)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False).clamp(0, 1)


@dataclass
class Keyframe:
    frame: int
    values: dict[str, Any]


@dataclass
class Timeline:
    """Per-frame parameters from keyframes (sorted by frame) and schedules (a key's value at every frame)."""

    keys: list[Keyframe] = field(default_factory=list)
    schedules: dict[str, Schedule | FrameTable] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)  # the schedules' values, once bound
    frames: int = 1  # the bound render's frames and rate (scheduled layer/target weights)
    fps: float = 12.0

    @classmethod
    def constant(cls, **values) -> "Timeline":
        return Timeline().with_defaults(**values)

    def with_defaults(self, **values) -> "Timeline":
        """Fill keys that no keyframe or schedule sets with the flags' values (constants or schedules)."""
        set_keys = {k for key in self.keys for k in key.values} | set(self.schedules)
        missing = {k: v for k, v in values.items() if k not in set_keys and v is not None}
        constants = {k: v for k, v in missing.items() if not isinstance(v, (Schedule, FrameTable))}
        schedules = {**self.schedules, **{k: v for k, v in missing.items() if k not in constants}}
        if not self.keys:
            keys = [Keyframe(0, constants)]
        else:
            keys = [Keyframe(self.keys[0].frame, {**constants, **self.keys[0].values})] + self.keys[1:]
        return Timeline(keys, schedules)

    def bind(self, frames: int, fps: float) -> "Timeline":
        """Evaluate every schedule at frames 0..frames-1 (finite, in its option's range, or a one-line DreamError
        naming the frame); ``at`` reads them from then on."""
        self.series = {k: check_series(k, s, frames, fps, s.origin or "--" + k.replace("_", "-"))
                       for k, s in self.schedules.items()}
        self.frames, self.fps = frames, fps
        for key in self.keys:  # scheduled layer/target weights: every frame in range now
            for name in ("layer", "target"):
                specs_at(key.values.get(name, []), name, frames - 1, frames, fps)
        return self

    def at(self, frame: int) -> dict[str, Any]:
        if set(self.schedules) - set(self.series):
            raise RuntimeError("Timeline.bind(frames, fps) must come before at() for a timeline with schedules")
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
        for name in ("layer", "target"):  # a scheduled weight: its value at this frame
            if name in out and any(weight_schedule(spec, name) for spec in out[name]):
                out[name] = specs_at(out[name], name, min(frame, self.frames - 1), self.frames, self.fps)
        for name, values in self.series.items():
            v = values[min(frame, len(values) - 1)]
            out[name] = max(1, int(round(v))) if name == "steps" else v
        return out

    def mask_files(self) -> list[str]:
        """The mask files its keys switch to (inputs of the render, like --mask)."""
        return [k.values["mask"] for k in self.keys if k.values.get("mask") not in (None, "", "none")]

    def motion_at(self, frame: int) -> Motion:
        return Motion.from_values(self.at(frame))

    def describe(self) -> dict[str, str]:
        """The schedules as written, and the layer/target specs with scheduled weights (sidecars, dry runs)."""
        out = {k: s.text for k, s in self.schedules.items()}
        for name in ("layer", "target"):
            specs = [s for key in self.keys for s in key.values.get(name, []) if weight_schedule(s, name)]
            if specs:
                out[name] = " ".join(specs)
        return out


def load_timeline(path: str | Path) -> Timeline:
    """A TOML timeline: ``[[key]]`` tables with ``frame`` and any of zoom, rotate, shift = [dx, dy], the 3D camera's
    keys, layer, target, steps, mask; and top-level schedule strings (``zoom = "0:(1.0), 60:(1.04)"``).

    Every value goes through the option table's checks (``options.parse_value``), as a flag or preset value would.
    """
    p = Path(path)
    if not p.is_file():
        raise DreamError(f"timeline {str(p)!r} does not exist")
    _, data = read_toml(p, "timeline")
    data = {ALIASES.get(k, k): v for k, v in data.items()}
    if unknown := [k for k in data if k not in ("key", "description", *SCHEDULE_KEYS)]:
        raise DreamError(f"{p}: unknown top-level key {unknown[0]!r}",
                         f"a timeline holds [[key]] tables and schedules of {', '.join(SCHEDULE_KEYS)}")
    schedules = {}
    for name in (k for k in data if k in SCHEDULE_KEYS):
        value = parse_value(name, data[name], f"{p}: {name!r}")
        if not isinstance(value, Schedule):
            raise DreamError(f"{p}: top-level {name!r} must be a schedule string such as \"0:(1.0), 60:(1.04)\"",
                             "a constant goes into a [[key]] table")
        schedules[name] = replace(value, origin=f"{p}: {name!r}")
    keys = data.get("key", [] if schedules else None)
    if not isinstance(keys, list) or not (keys or schedules) or not all(isinstance(t, dict) for t in keys):
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
        values = _key_values(table, where)
        if both := sorted(set(values) & set(schedules)):
            raise DreamError(f"{where}: {both[0]!r} has a schedule already", "set it in one place")
        out.append(Keyframe(frame, values))
    return Timeline(sorted(out, key=lambda k: k.frame), schedules)


def _key_values(table: dict, where: str) -> dict[str, Any]:
    values = {}
    for name, value in table.items():
        name = ALIASES.get(name, name)
        at = f"{where}: {name!r}"
        if name == "frame":
            continue
        if name == "shift":
            if not (isinstance(value, list) and len(value) == 2):
                raise DreamError(f"{where}: 'shift' must be [dx, dy]")
            values["shift_x"], values["shift_y"] = _number("shift", value, at)
        elif name in NUMERIC_KEYS:
            values[name] = _number(name, value, at)
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
            raise DreamError(f"{where}: unknown key {name!r}",
                             f"use frame, {', '.join(NUMERIC_KEYS)}, shift, layer, target, steps, mask")
    return values


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


#: Parseq's per-frame fields (Deforum's names) that drive a zoom, and dreamreel's keys for them.
PARSEQ_KEYS = {"zoom": "zoom", "angle": "rotate", "translation_x": "shift_x", "translation_y": "shift_y",
               "translation_z": "translation_z", "rotation_3d_x": "rotation_3d_x", "rotation_3d_y": "rotation_3d_y",
               "rotation_3d_z": "rotation_3d_z", "fov": "fov"}


def load_parseq(path: str | Path) -> dict[str, FrameTable]:
    """A Parseq render's JSON (``{"rendered_frames": [{"frame": 0, "zoom": 1.0, "angle": 0, ...}, ...]}``): one
    per-frame table for each motion field it holds; its other fields (prompts, seeds, strength) are not dreamreel's.
    Where a frame has ``zoom_delta`` (Parseq's per-frame move beside the absolute position), that is the motion,
    as Deforum's default "use deltas" reads it."""
    import json

    p = Path(path)
    if not p.is_file():
        raise DreamError(f"Parseq file {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DreamError(f"cannot read Parseq file {str(p)!r}: {exc}") from None
    rows = data.get("rendered_frames") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise DreamError(f"{p}: no rendered_frames list", "export the render's JSON from Parseq (Output: copy/save)")
    columns: dict[str, dict[int, float]] = {}
    for i, row in enumerate(rows):
        frame = row.get("frame")
        if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame <= 1_000_000:
            raise DreamError(f"{p}: rendered_frames[{i}]: 'frame' must be a whole frame number, not {frame!r}")
        for name, key in PARSEQ_KEYS.items():
            field_name = f"{name}_delta" if f"{name}_delta" in row else name  # the per-frame move, as Deforum reads it
            if field_name not in row:
                continue
            v = row[field_name]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise DreamError(f"{p}: frame {frame}: {field_name!r} must be a finite number, not {v!r}")
            columns.setdefault(key, {})[frame] = float(v)
    if not columns:
        raise DreamError(f"{p}: no motion fields in rendered_frames", f"expected some of {', '.join(PARSEQ_KEYS)}")
    return {k: FrameTable(f"parseq:{p.name}", tuple(sorted(c.items())), f"{p}: {k!r}") for k, c in columns.items()}


def clip_timeline(values: dict[str, Any]) -> Timeline | None:
    """A clip's schedules (blend, lr, sigma, steps, and layer/target specs with scheduled weights), or None."""
    schedules = {k: values[k] for k in ("blend", "lr", "sigma", "steps") if isinstance(values[k], Schedule)}
    weights = {k: values[k] for k in ("layer", "target") if any(weight_schedule(s, k) for s in values[k])}
    if not (schedules or weights):
        return None
    if values.get("segments") is not None:
        raise DreamError("--segments does not follow schedules", "render the clip without --segments")
    return Timeline([Keyframe(0, weights)], schedules)
