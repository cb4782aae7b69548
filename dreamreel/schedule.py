"""The frame scheduler: where each frame starts (a still, noise, the previous dream warped) and with what parameters.

A ``Timeline`` holds keyframes: numbers (zoom, rotate, shift) are interpolated linearly between
keys, choices (layer, target, steps) switch at their key. ``Motion`` is the affine warp between
frames, done on the device. ``render_zoom`` dreams frame k+1 from frame k's dream, warped.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DreamError
from .images import atomic_path, from_uint8, to_uint8

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NUMERIC_KEYS = ("zoom", "rotate", "shift_x", "shift_y")
CHOICE_KEYS = ("layer", "target", "steps", "mask")  # mask: art (issue 14), switches at its key


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
    """A TOML timeline: ``[[key]]`` tables with ``frame`` and any of zoom, rotate, shift = [dx, dy], layer, target, steps."""
    p = Path(path)
    if not p.is_file():
        raise DreamError(f"timeline {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DreamError(f"{p}: {exc}") from None
    keys = data.get("key")
    if not isinstance(keys, list) or not keys:
        raise DreamError(f"{p}: no [[key]] tables", "see README: Timelines")
    out = []
    for i, table in enumerate(keys):
        where = f"{p}: key #{i + 1}"
        if not isinstance(table.get("frame"), int) or table["frame"] < 0:
            raise DreamError(f"{where}: 'frame' must be a whole number >= 0")
        values = {}
        for name, value in table.items():
            if name == "frame":
                continue
            if name == "shift":
                if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
                    raise DreamError(f"{where}: 'shift' must be [dx, dy]")
                values["shift_x"], values["shift_y"] = float(value[0]), float(value[1])
            elif name in ("zoom", "rotate", "shift_x", "shift_y"):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise DreamError(f"{where}: {name!r} must be a number")
                if name == "zoom" and value <= 0:
                    raise DreamError(f"{where}: 'zoom' must be > 0")
                values[name] = float(value)
            elif name in ("layer", "target"):
                values[name] = [value] if isinstance(value, str) else list(value)
            elif name == "steps":
                if not isinstance(value, int) or value < 1:
                    raise DreamError(f"{where}: 'steps' must be a whole number >= 1")
                values[name] = value
            elif name == "mask":  # art (issue 14): a mask file from this key on, or "none"
                if not isinstance(value, str):
                    raise DreamError(f"{where}: 'mask' must be a path or \"none\"")
                values[name] = value
            else:
                raise DreamError(f"{where}: unknown key {name!r}", "use frame, zoom, rotate, shift, layer, target, steps, mask")
        out.append(Keyframe(table["frame"], values))
    return Timeline(sorted(out, key=lambda k: k.frame))


def parse_shift(text: str) -> tuple[float, float]:
    try:
        dx, dy = (float(v) for v in str(text).split(","))
    except ValueError:
        raise DreamError(f"bad --shift {text!r}", "write DX,DY in pixels, e.g. 0,-2") from None
    return dx, dy


def frame_generator(seed: int, frame: int) -> torch.Generator:
    """Each frame's own random stream, so a resumed render draws the same numbers."""
    return torch.Generator().manual_seed(seed * 1_000_003 + frame)


# ---------------------------------------------------------------- resume checkpoints


class Checkpoint:
    """What an interrupted render needs to continue exactly: frames done, the last frame, per-frame records."""

    def __init__(self, output: Path):
        self.dir = output.parent / f".{output.name}.resume"

    def exists(self) -> bool:
        return (self.dir / "state.json").is_file()

    def save(self, fingerprint: str, frames_done: int, last_frame: np.ndarray, records: list[dict], extra: dict | None = None) -> None:
        import imageio.v3 as iio

        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dir / "last.png") as tmp:
            iio.imwrite(tmp, last_frame)
        state = {"fingerprint": fingerprint, "frames_done": frames_done, "records": records, **(extra or {})}
        with atomic_path(self.dir / "state.json") as tmp:
            tmp.write_text(json.dumps(state))

    def load(self, fingerprint: str) -> tuple[int, np.ndarray, list[dict], dict]:
        import imageio.v3 as iio

        state = json.loads((self.dir / "state.json").read_text())
        if state.get("fingerprint") != fingerprint:
            raise DreamError(
                "cannot --resume: the interrupted render used other settings",
                "rerun with the same input and options, or drop --resume to start over",
            )
        return state["frames_done"], iio.imread(self.dir / "last.png"), state["records"], state

    def begin(self, resume: bool, output: Path, key: str) -> tuple[int, np.ndarray | None, list[dict], dict | None]:
        """Where a render starts: (frames done, last frame, records, None), or the finished render's sidecar as the last item."""
        if resume and self.exists():
            start, last, records, _ = self.load(key)
            return start, last, records, None
        if resume and output.exists():
            done = _finished_render(output, key)
            if done is not None:
                print(f"dreamreel: {output} is already complete ({done.get('frames')} frames); nothing to resume", file=sys.stderr)
                return 0, None, [], done
            raise DreamError(f"nothing to resume at {str(output)!r}: no interrupted render was recorded",
                             "drop --resume to render it again")
        return 0, None, [], None

    def remove(self) -> None:
        for p in (self.dir / "state.json", self.dir / "last.png"):
            p.unlink(missing_ok=True)
        if self.dir.is_dir():
            try:
                self.dir.rmdir()
            except OSError:
                pass


def fingerprint(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- zoom


@dataclass
class ZoomJob:
    frames: int
    fps: float
    timeline: Timeline
    first_octaves: int | list[int] | None  # the first frame's octaves (None: the plan's)
    octaves: int | list[int]  # each later frame's octaves
    steps: list[int]  # each later frame's steps (a timeline 'steps' key overrides)
    crf: int = 18
    # --- art (issue 14): see art.py
    react: list[dict] | None = None  # per frame: audio features and the parameters they drive (override the timeline)
    reacts: list = field(default_factory=list)  # the parsed --react items
    audio: Path | None = None  # a track muxed into the output
    audio_features: object = None  # audio.AudioFeatures
    loop: int = 0  # --loop: frames cross-faded from the end into the start (0: no loop)


def render_zoom(plan, source, output: Path, job: ZoomJob, *, resume: bool = False, show_progress: bool = True,
                progress_recorder=None, frame_recorders=()) -> dict:
    """Frame k+1 = dream(warp(frame k)). Frames stream to ``output``; Ctrl-C keeps the finished ones.

    ``frame_recorders`` (e.g. recorders.FrameOverlay) see every step and each finished frame.
    """
    from . import art
    from .encode import open_writer
    from .render import Engine, first_frame, load_source, run_dream
    from .sidecar import write_sidecar
    from tqdm import tqdm

    image, size = load_source(source, plan)
    first_settings = plan.settings(size, octaves=job.first_octaves)
    frame_settings = plan.settings(size, octaves=job.octaves, steps=job.steps)
    for key in [0] + [k.frame for k in job.timeline.keys]:  # choices only change at keys: validate each before any compute
        _objective_for(plan, job.timeline.at(key))
    art.check_zoom(job, plan, size)
    key = fingerprint({"plan": plan.to_json(), "input": source.label, "frames": job.frames,
                       "first": str(first_settings), "each": str(frame_settings),
                       "timeline": [(k.frame, k.values) for k in job.timeline.keys],
                       "react": job.react, "loop": job.loop})
    checkpoint = Checkpoint(output)
    start, last, records, finished = checkpoint.begin(resume, output, key)
    if finished is not None:
        return finished
    prev = from_uint8(last) if last is not None else None
    engine = Engine.load(plan)
    dreamers = {}
    appended = start
    last_frame = None
    t_start = time.perf_counter()
    dream_seconds = 0.0
    writer = art.open_frame_writer(open_writer(output, fps=job.fps, crf=job.crf, audio_from=job.audio, append=start > 0), job)
    n_render = art.rendered_frames(job, writer)
    bar = tqdm(total=n_render, initial=start, desc="zoom", unit="frame", dynamic_ncols=True, disable=not show_progress)
    try:
        with writer:
            for k in range(start, n_render):
                if getattr(writer, "done", False):  # a --loop writer has the frames it needs
                    break
                values = art.frame_values(job, k, job.timeline.at(k))
                engine.dreamer = _dreamer_for(engine, plan, values, dreamers)
                engine.objective = engine.dreamer.objective
                if k == 0:
                    settings = first_settings
                    x = first_frame(image, settings, plan.seed)
                    x = x.to(engine.device)
                    motion = Motion()
                else:
                    steps = [values["steps"]] if "steps" in values else job.steps
                    settings = frame_settings if steps == job.steps else plan.settings(size, octaves=job.octaves, steps=steps)
                    motion = Motion.from_values(values)
                    x = motion.apply(prev.to(engine.device))
                settings = art.frame_settings(settings, plan, job, k, values, size)
                callbacks = [r.on_step for r in frame_recorders]
                if k == 0 and progress_recorder is not None:
                    progress_recorder.begin(x, settings, engine)
                    callbacks.append(progress_recorder.on_step)
                t0 = time.perf_counter()
                result = run_dream(engine, x, settings, seed=plan.seed * 1_000_003 + k, callbacks=callbacks,
                                   desc=f"frame {k + 1}", show_progress=False, evaluate_end=k == 0)
                frame = to_uint8(result.image)  # the quantised frame is both what is written and the next start
                dt = time.perf_counter() - t0
                dream_seconds += dt
                writer.append(frame)
                for r in frame_recorders:
                    r.frame_done(frame, k)
                appended, last_frame, prev = k + 1, frame, from_uint8(frame)
                records.append({"frame": k, "zoom": motion.zoom, "rotate": motion.rotate, "shift": list(motion.shift),
                                "layer": values.get("layer", plan.layer) or [plan.spec.default_layer],
                                "target": values.get("target", plan.target),
                                "steps": sum(o.steps for o in settings.octaves), "seconds": round(dt, 4),
                                "objective_end": result.octaves[-1].objective_end, **art.frame_record(values, settings)})
                if k == 0 and progress_recorder is not None:
                    progress_recorder.finish(result)
                bar.update(1)
    except KeyboardInterrupt as exc:
        bar.close()
        if job.loop:  # a loop's head frames were held in memory: no resume
            print(f"dreamreel: interrupted: {output} holds {writer.written} frames (not a loop; "
                  f"a --loop render starts over)", file=sys.stderr)
            exc.reported = True
            raise
        if last_frame is not None and appended > start:  # else the old checkpoint still holds
            checkpoint.save(key, appended, last_frame, records)
        print(f"dreamreel: interrupted: {output} holds {appended} of {job.frames} frames; "
              f"continue with --resume", file=sys.stderr)
        exc.reported = True
        raise
    bar.close()
    checkpoint.remove()
    wall = time.perf_counter() - t_start
    data = {
        "command": "zoom",
        "input": source.label,
        "output": str(output),
        "frames": job.frames,
        "fps": job.fps,
        "parameters": plan.to_json(),
        "model": engine.spec.name,
        "weights": plan.to_json()["weights_source"],
        "seed": plan.seed,
        "device": str(engine.device),
        "first_frame_octaves": [list(o.size) for o in first_settings.octaves],
        "frame_octaves": [list(o.size) for o in frame_settings.octaves],
        "timeline": [{"frame": k.frame, **k.values} for k in job.timeline.keys],
        "seconds": round(wall, 3),
        "dream_seconds": round(dream_seconds, 3),
        "resumed_at_frame": start if start else None,
        "per_frame": records,
        "fingerprint": key,
        **art.zoom_sidecar(job, plan, writer),
    }
    write_sidecar(output, data)
    return data


def _finished_render(output: Path, key: str) -> dict | None:
    """The sidecar of a finished render of these very settings, or None."""
    from .sidecar import sidecar_path

    try:
        data = json.loads(sidecar_path(output).read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("fingerprint") == key else None


def _objective_for(plan, values: Mapping[str, Any]):
    from .objectives import build_objective

    layers = values.get("layer", plan.layer)
    targets = values.get("target", plan.target)
    return build_objective(layers, targets, plan.spec.default_layer).bind(plan.spec)


def _dreamer_for(engine, plan, values, cache: dict):
    from .engine import Dreamer

    key = (tuple(values.get("layer", plan.layer)), tuple(values.get("target", plan.target)))
    if key not in cache:
        cache[key] = Dreamer(engine.dreamer.model, _objective_for(plan, values), engine.device)
    return cache[key]
