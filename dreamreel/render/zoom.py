"""Zoom renders: frame k+1 is frame k's dream, warped (zoom, rotate, shift), then dreamt again.

``ZoomStart`` is the frame loop's strategy (see ``frames``); ``zoom_frames`` yields the frames as arrays,
``render_zoom`` streams them into a file with a sidecar and resume checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine import DreamResult, Dreamer
from ..engine.conditioning import color_stats, match_color
from ..engine.objectives import build_objective
from ..errors import DreamError
from ..io.images import from_uint8, to_uint8
from ..plan import DreamPlan
from . import art
from .frames import FrameStart, FramesResult, dream_frames, fingerprint, render_frames
from .runtime import Engine, Source, first_frame, load_source
from .timeline import Motion, Timeline
from .travel import travel_targets
from .tween import ZoomTween, tween_frames


@dataclass(frozen=True)
class ZoomJob:
    frames: int
    fps: float
    timeline: Timeline
    first_octaves: int | list[int] | None  # the first frame's octaves (None: the plan's)
    octaves: int | list[int]  # each later frame's octaves
    steps: list[int]  # each later frame's steps (a timeline 'steps' key overrides)
    crf: int = 18
    color_match: str = "none"  # match each frame's colour mean/std to the first frame's: none, rgb, decorrelated
    # per-frame effects: see art.py
    react: list[dict] | None = None  # per frame: audio features and the parameters they drive (override the timeline)
    reacts: list = field(default_factory=list)  # the parsed --react items
    audio: Path | None = None  # a track muxed into the output
    audio_features: object = None  # audio.AudioFeatures
    loop: int = 0  # --loop: frames cross-faded from the end into the start (0: no loop)
    depth: object = None  # --depth: the 3D camera's depth map (a masks.MaskSource read as grey), or None (flat)
    travel: int = 0  # --travel: frames per leg toward the next class family (render/travel.py; 0: off)
    travel_weight: float = 0.0
    interpolate: int = 1  # --interpolate: in-betweens + 1 per dreamt frame (render/tween.py)
    draft: bool = False  # --draft: the sidecar says so


class ZoomStart:
    """Frame 0 starts from the source (or noise); frame k from frame k-1's dream, warped by the timeline's motion."""

    name = "zoom"

    def __init__(self, plan: DreamPlan, image: torch.Tensor | None, size, job: ZoomJob):
        self.plan, self.image, self.size, self.job = plan, image, size, job
        self.total = job.frames + job.loop  # a --loop renders its fade frames on top
        self.first_settings = plan.settings(size, octaves=job.first_octaves)
        self.frame_settings = plan.settings(size, octaves=job.octaves, steps=job.steps)
        check_timeline_objectives(plan, job.timeline)
        art.check_zoom(job, plan, size)
        self.loop = None  # --loop: the LoopWriter the frames go to (its sidecar entry)
        self.prev: torch.Tensor | None = None
        self.last: np.ndarray | None = None
        self.dreamers: dict = {}
        self.dream_seconds = 0.0
        self._motion = Motion()
        self._motion_depth = None
        self._values: dict = {}
        self._settings = self.first_settings
        self.reference = None  # --color-match: the first frame's per-channel (mean, std)

    def fingerprint(self, source: Source) -> str:
        job = self.job
        return fingerprint({"plan": self.plan.to_json(), "input": source.label, "frames": job.frames,
                            "first": str(self.first_settings), "each": str(self.frame_settings),
                            "color_match": job.color_match, "react": job.react, "loop": job.loop,
                            **({"travel": [job.travel, job.travel_weight]} if job.travel else {}),
                            "timeline": [(k.frame, k.values) for k in job.timeline.keys],
                            **({"schedules": job.timeline.describe()} if job.timeline.schedules else {}),
                            **({"depth": str(job.depth.path)} if job.depth is not None else {})})

    def restore(self, last: np.ndarray, state: dict) -> None:
        self.prev, self.last = from_uint8(last), last
        if self.job.color_match != "none":
            ref = state.get("color_reference")
            try:
                reference = tuple(torch.tensor(v, dtype=torch.float32) for v in ref)
                ok = len(reference) == 2 and all(r.numel() == 3 and bool(torch.isfinite(r).all()) for r in reference)
            except (TypeError, ValueError, RuntimeError):
                ok = False
            if not ok:
                raise DreamError("cannot --resume: the checkpoint lacks the first frame's colour statistics",
                                 "drop --resume to start over")
            self.reference = reference

    def checkpoint_state(self) -> dict:
        if self.reference is None:
            return {}
        return {"color_reference": [r.float().cpu().tolist() for r in self.reference]}

    def finish(self, k: int, image: torch.Tensor) -> torch.Tensor:
        """--color-match: every later frame keeps the first frame's colour statistics (against drift and wash-out)."""
        if self.job.color_match == "none":
            return image
        if k == 0 or self.reference is None:
            self.reference = color_stats(from_uint8(to_uint8(image)).to(image.device), self.job.color_match)
            return image
        return match_color(image, self.reference, self.job.color_match)

    @property
    def motion(self) -> tuple[Motion, torch.Tensor | None]:
        """The warp that led from the last frame to the one just dreamt (identity for the first), and the depth
        it flew over (None: flat)."""
        return self._motion, self._motion_depth

    @property
    def resumable(self) -> bool:
        return not self.job.loop  # a loop's head frames are held in memory until its end

    def wrap_writer(self, writer):
        """--loop: the writer takes job.frames + job.loop rendered frames and writes the loop's job.frames."""
        if not self.job.loop:
            return writer
        self.loop = art.loop_writer(writer, self.job)
        return self.loop

    def indices(self, start: int) -> Iterator[int]:
        return iter(range(start, self.total))  # a --loop's writer takes its fade frames on top of the output's

    def start(self, k: int, engine: Engine) -> FrameStart:
        plan, job = self.plan, self.job
        values = art.frame_values(job, k, job.timeline.at(k))
        if job.travel:
            values = {**values, "target": travel_targets(job.travel, job.travel_weight, k, values.get("target", plan.target))}
        self._values = values
        engine.dreamer = dreamer_for(engine, plan, values, self.dreamers)
        engine.objective = engine.dreamer.objective
        if k == 0:
            settings = self.first_settings
            x = first_frame(self.image, settings, plan.seed).to(engine.device)
            motion = Motion()
        else:
            steps = [values["steps"]] if "steps" in values else job.steps
            settings = self.frame_settings if steps == job.steps else plan.settings(self.size, octaves=job.octaves, steps=steps)
            motion = Motion.from_values(values)
            self._motion_depth = self._depth(k - 1, engine.device) if motion.camera else None
            x = motion.apply(self.prev.to(engine.device), self._motion_depth)
        settings = art.frame_settings(settings, plan, k, values, self.size)
        self._motion, self._settings = motion, settings
        return FrameStart(x, settings, plan.seed * 1_000_003 + k, evaluate_end=k == 0)

    def done(self, k: int, frame: np.ndarray, result: DreamResult, prepare_s: float, dream_s: float) -> dict:
        plan, values, motion = self.plan, self._values, self._motion
        self.prev, self.last = from_uint8(frame), frame  # the quantised frame is the next start
        self.dream_seconds += dream_s
        camera = Motion.from_values(values).camera  # frame 0 does not move, but records its values as well
        return {"frame": k, "zoom": values.get("zoom", motion.zoom), "rotate": values.get("rotate", motion.rotate),
                "shift": [values.get("shift_x", motion.shift[0]), values.get("shift_y", motion.shift[1])],
                **(camera.record() if camera else {}), **({"blend": values["blend"]} if "blend" in values else {}),
                "layer": values.get("layer", plan.layer) or list(plan.spec.default_layers),
                "target": values.get("target", plan.target),
                "steps": sum(o.steps for o in self._settings.octaves), "seconds": round(dream_s, 4),
                "objective_end": result.octaves[-1].objective_end, **art.frame_record(values, self._settings)}

    def _depth(self, k: int, device):
        """The depth of the picture frame k+1 warps (frame k of a --depth video), or None (flat)."""
        if self.job.depth is None:
            return None
        return self.job.depth.frame(k).at(self.size, device)

    def checkpoint_image(self) -> np.ndarray:
        return self.last

    def checkpoint_shape(self) -> tuple[int, int, int]:
        return (self.size[1], self.size[0], 3)


def zoom_frames(plan: DreamPlan, source: Source, job: ZoomJob, *, engine: Engine | None = None,
                recorders: Sequence = (), show_progress: bool = False, image=None) -> Iterator[np.ndarray]:
    """Yield the zoom's frames (HxWx3 uint8) one by one; nothing is written."""
    if image is None:
        image, size = load_source(source, plan)
    else:
        size = plan.output_size((image.shape[-1], image.shape[-2]))
    if job.loop:
        raise DreamError("--loop needs an output file (write_zoom): its frames are reordered at the end")
    strategy = ZoomStart(plan, image, size, job)
    engine = engine or Engine.load(plan)
    frames = (frame for _, frame, _ in dream_frames(strategy, engine, recorders=recorders, show_progress=show_progress))
    yield from tween_frames(ZoomTween(strategy, job.interpolate), frames) if job.interpolate > 1 else frames


def render_zoom(plan: DreamPlan, source: Source, output: Path, job: ZoomJob, *, resume: bool = False,
                show_progress: bool = True, recorders: Sequence = (), engine: Engine | None = None) -> FramesResult:
    """Frame k+1 = dream(warp(frame k)). Frames stream to ``output``; Ctrl-C keeps the finished ones."""
    image, size = load_source(source, plan)
    if job.loop and resume:
        raise DreamError("--loop renders cannot --resume", "render the loop again without --resume")
    strategy = ZoomStart(plan, image, size, job)
    key = strategy.fingerprint(source)

    def sidecar(state) -> dict:
        engine = state.engine
        return {
            "command": "zoom",
            "input": source.label,
            "output": str(output),
            "frames": state.frames,
            "fps": job.fps,
            "parameters": plan.to_json(),
            "model": engine.spec.name,
            "weights": plan.to_json()["weights_source"],
            "seed": plan.seed,
            "device": str(engine.device),
            "first_frame_octaves": [list(o.size) for o in strategy.first_settings.octaves],
            "frame_octaves": [list(o.size) for o in strategy.frame_settings.octaves],
            "timeline": [{"frame": k.frame, **k.values} for k in job.timeline.keys],
            "schedules": job.timeline.describe(),
            "depth": job.depth.describe() if job.depth is not None else None,
            "seconds": round(state.seconds, 3),
            "dream_seconds": round(strategy.dream_seconds, 3),
            "resumed_at_frame": state.start if state.start else None,
            "per_frame": state.records,
            "fingerprint": key,
            **art.zoom_sidecar(job, plan, strategy.loop),
        }

    return render_frames(strategy, lambda: engine or Engine.load(plan), output, key=key, fps=job.fps, crf=job.crf,
                         resume=resume, recorders=recorders, show_progress=show_progress, sidecar=sidecar,
                         audio_from=job.audio if job.audio is not None and output.suffix.lower() == ".mp4" else None,
                         tween=ZoomTween(strategy, job.interpolate) if job.interpolate > 1 else None,
                         notes={"draft": True} if job.draft else None)


def check_timeline_objectives(plan: DreamPlan, timeline) -> None:
    """Every layer and target a timeline switches to, bound now: choices only change at keys, so a bad one is
    refused before any work rather than at its frame."""
    for key in [0] + [k.frame for k in timeline.keys]:
        objective_for(plan, timeline.at(key))


def objective_for(plan: DreamPlan, values: Mapping[str, Any]):
    layers = values.get("layer", plan.layer)
    targets = values.get("target", plan.target)
    return build_objective(layers, targets, plan.spec.default_layers, plan.layer_objective).bind(plan.spec)


def dreamer_for(engine: Engine, plan: DreamPlan, values: Mapping[str, Any], cache: dict) -> Dreamer:
    """The dreamer of a frame's layers and targets (``values``, else the plan's), from ``cache`` when it has one."""
    key = (tuple(values.get("layer", plan.layer)), tuple(values.get("target", plan.target)))
    if key not in cache:
        if len(cache) >= 16:  # scheduled weights make a new objective every frame: keep the cache small
            cache.clear()
        cache[key] = Dreamer(engine.dreamer.model, objective_for(plan, values), engine.device)
    return cache[key]
