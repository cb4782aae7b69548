"""Dreamt clips: ``dreamreel video`` dreams a real video frame by frame, carrying the dream along the motion.

Each frame k (decoded as a stream at the dream size) starts from its source frame plus the previous
frame's dream detail (dream minus its source, the source smoothed as the dream smoothed it), warped by the
optical flow from frame k-1 to frame k and weighted by ``blend``, masked where the flow is not trustworthy
(occlusions, content entering the frame), then gets a few small dream steps. The detail therefore moves
with the scene instead of being re-invented in every frame, which is what flickers. The first frame is
dreamt several times over, each pass continuing the last, so the dream starts at full strength.
``--flow none`` dreams every frame on its own.

The quantised (uint8) dream is both what is written and what the next frame continues from, so a
render resumed from its checkpoint (the last dream and its source frame, side by side in one lossless
PNG) is frame for frame the same as an uninterrupted one.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DreamError
from ..io.images import to_uint8
from .audio import clip_audio
from .carry import carry_flow, dream_detail, smoothed_source, start_image
from .frames import FrameStart, fingerprint

from ..options import DEFAULT_BLEND

if TYPE_CHECKING:
    import torch

#: The first frame has no previous dream to continue: it is dreamt up to this many times over (see warmup_passes).
MAX_WARMUP = 10


@dataclass(frozen=True)
class VideoJob:
    """What to take from the clip and how to carry the dream from frame to frame."""

    flow: str = "farneback"  # a video.FLOW_METHODS name, or "none"
    blend: float = DEFAULT_BLEND
    start: float = 0.0  # seconds
    end: float | None = None  # seconds (exclusive)
    every: int = 1  # keep every N-th frame (the output plays at fps / N so it keeps the clip's timing)
    crf: int = 18
    timeline: object = None  # timeline.Timeline of the scheduled blend, lr, sigma, steps (None: none scheduled)
    deflicker: float = 0.0  # the residual's temporal filter along the flow, 0-1 (render/deflicker.py)
    interpolate: int = 1  # in-betweens + 1 per dreamt frame (render/tween.py)
    draft: bool = False  # --draft: the sidecar says so


def job_from_values(values: dict) -> VideoJob:
    """The clip options of a merged option table (see ``options``), checked together."""
    from .deflicker import default_strength
    from ..series import frame_value
    from .timeline import clip_timeline

    if values["deflicker"] and values["flow"] == "none":
        raise DreamError("--deflicker filters the dream along the optical flow, and --flow none has none",
                         "drop --deflicker, or choose a --flow")
    job = VideoJob(flow=values["flow"], blend=frame_value("blend", values["blend"]), start=values["start"],
                   end=values["end"], every=values["every"], crf=values["crf"], timeline=clip_timeline(values),
                   deflicker=default_strength(values["flow"], values["deflicker"]),
                   interpolate=values["interpolate"], draft=values["draft"])
    if job.end is not None and job.end <= job.start:
        raise DreamError(f"--end {job.end:g} must come after --start {job.start:g}")
    return job


def check_flow_method(method: str) -> str | None:
    """The RAFT variant that will run (its weights must be in the torch hub cache), or None for the others."""
    if method.startswith("raft"):
        from .flow import resolve_raft

        return resolve_raft(method)[0]
    return None


# ---------------------------------------------------------------- the clip

def warmup_passes(job: VideoJob) -> int:
    """How many times the first frame is dreamt (each pass carrying the last one's detail, like a still clip):
    enough for the carried dream to reach about its steady strength, ~1/(1-blend) frames' worth, at most 10."""
    if job.flow == "none" or job.blend <= 0:
        return 1
    return max(1, min(MAX_WARMUP, round(1.0 / max(1e-6, 1.0 - job.blend))))


@dataclass
class ClipPlan:
    """A probed clip and what a render of it will produce."""

    info: object  # video.VideoInfo
    size: tuple[int, int]  # dream/output (w, h)
    fps: float  # output frame rate
    frames: int  # expected output frames (exact without --start/--end)
    exact: bool


def plan_clip(path: Path, plan, job: VideoJob) -> ClipPlan:
    """Probe the clip (one clear VideoError line for a bad file) and work out the output's size, rate and length."""
    from ..io.readers import probe_video

    info = probe_video(path)
    if info.duration and job.start >= info.duration:
        raise DreamError(f"--start {job.start:g} is past the end of {str(path)!r} ({info.duration:.2f} s long)")
    size = plan.output_size(info.size)
    n = info.n_frames or 0
    exact = job.start == 0 and job.end is None
    if not exact:
        first = int(round(job.start * info.fps))
        last = n if job.end is None else min(n, int(np.ceil(job.end * info.fps - 1e-6)))
        n = max(1, last - first)
    frames = -(-n // job.every)
    if job.timeline is not None:  # every scheduled value of every frame, checked now
        job.timeline.bind(max(1, frames), info.fps / job.every)
    return ClipPlan(info, size, info.fps / job.every, frames, exact)


def _fingerprint_source(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


class ClipStart:
    """Frame k starts from its source frame plus the last dream's detail, carried along the optical flow."""

    name = "video"

    def __init__(self, plan, clip: ClipPlan, job: VideoJob, input_path: Path):
        self.plan, self.clip, self.job, self.input_path = plan, clip, job, input_path
        self.settings = plan.settings(clip.size)
        self.total = clip.frames
        self.carry = job.flow != "none" and job.blend > 0
        self.warmup = warmup_passes(job)
        self.prev_dream = self.prev_src = self.prev_smoothed = None
        self.last_written = None  # the frame last written (the dream, or with --deflicker its filtered residual)
        self.stopped_early: str | None = None
        self.dream_seconds = self.flow_seconds = 0.0
        self._src = self._flow = self._smoothed = None
        self._flow_s = 0.0  # seconds of this frame's flow computed ahead (in the decode stage)
        self._carried, self._visible, self._passes = False, None, 1
        self._values: dict = {}  # frame k's scheduled values
        self._dreamers: dict = {}  # scheduled layer/target weights: a dreamer per frame's objective
        self.carried = None  # this frame's (carried detail, flow to the previous frame, its mask), for the tween
        self.deflicker = None
        if job.deflicker:
            from .deflicker import ResidualFilter

            self.deflicker = ResidualFilter(job.deflicker)

    def fingerprint(self) -> str:
        job = self.job
        return fingerprint({"plan": self.plan.to_json(), "source": _fingerprint_source(self.input_path),
                            "settings": str(self.settings), "size": self.clip.size, "flow": job.flow,
                            "blend": job.blend, "start": job.start, "end": job.end, "every": job.every,
                            "warmup": self.warmup, "command": "video",
                            **({"schedules": job.timeline.describe()} if job.timeline is not None else {}),
                            **({"deflicker": job.deflicker} if job.deflicker else {})})

    def restore(self, last: np.ndarray, state: dict) -> None:  # the checkpoint: the last dream, its source (, written)
        w = self.clip.size[0]
        self.prev_dream, self.prev_src, self.last_written = last[:, :w], last[:, w:2 * w], last[:, :w]
        if self.deflicker is not None:
            self.last_written = self.deflicker.prev_written = last[:, 2 * w:]

    def indices(self, start: int):
        from ..io.readers import VideoError, iter_frames
        from .pipeline import Ahead, with_flow

        job = self.job
        flow = (lambda prev, cur: carry_flow(prev, cur, job.flow)) if self.carry else None
        smooth = (lambda frame: smoothed_source(frame, self.settings)) if self.carry else None
        frames_in = Ahead(lambda: with_flow(iter_frames(self.input_path, start=job.start, end=job.end, every=job.every,
                                                        size=self.clip.size), flow, start, smooth),
                          name="decode-flow")  # decoding, the flow and the smoothed source run ahead (pipeline.py)
        k, started = -1, start > 0
        try:
            while True:
                try:
                    src, flow, smoothed = next(frames_in)
                except StopIteration:
                    return
                except VideoError as exc:
                    if not started:
                        raise
                    self.stopped_early = str(exc)  # a damaged tail: keep what decoded
                    return
                k += 1
                if k < start:
                    continue  # resuming: these frames are in the output already
                self._src, self._flow, self._smoothed, started = src, flow, smoothed, True
                yield k
        finally:
            frames_in.close()

    def start(self, k: int, engine) -> FrameStart:
        from .flow import warp
        from . import runtime

        plan, job, settings, src = self.plan, self.job, self.settings, self._src
        values = self._values = job.timeline.at(k) if job.timeline is not None else {}
        blend = values.get("blend", job.blend)
        detail = mask = None
        self._carried, self._visible, self.carried = False, None, None
        self._flow_s = 0.0
        if self.carry and self.prev_dream is not None:
            if self._flow is not None:  # computed ahead, from the same previous source frame
                (flow, mask), self._flow_s = self._flow
            else:
                flow, mask = carry_flow(self.prev_src, src, job.flow)
            detail = warp(dream_detail(self.prev_dream, self.prev_src, self._settings(k - 1), self._ahead(self.prev_smoothed)),
                          flow)
            self._carried, self._visible = True, float(mask.mean())
            self.carried = (detail, flow, mask)
        if self.deflicker is not None:  # the last written residual, carried along the same flow
            self.deflicker.prepare(None if self.carried is None else
                                   warp(dream_detail(self.last_written, self.prev_src, self._settings(k - 1)), flow),
                                   mask)
        self._passes = self.warmup if self.carry and self.prev_dream is None else 1  # a clip's (or a segment's) first frame
        for i in range(self._passes - 1):  # the first frame: dreamt as if the clip had held still before it
            result = runtime.run_dream(engine, start_image(src, detail, job.blend).to(engine.device), settings,
                               seed=plan.seed * 1_000_003 - (i + 1), show_progress=False)
            detail = dream_detail(to_uint8(result.image), src, self._settings(k), self._ahead(self._smoothed))
        from .art import frame_settings  # a --mask video masks frame k; scheduled lr/sigma

        settings = self._settings(k)
        if "layer" in values or "target" in values:  # scheduled weights: this frame's objective
            from .zoom import dreamer_for

            engine.dreamer = dreamer_for(engine, plan, values, self._dreamers)
            engine.objective = engine.dreamer.objective
        return FrameStart(start_image(src, detail, blend, mask), frame_settings(settings, plan, k, values, self.clip.size),
                          plan.seed * 1_000_003 + k)

    def _ahead(self, smoothed):
        """A source smoothed ahead (in the decode stage, with the clip's settings), where no schedule changes its blur."""
        return smoothed if self.job.timeline is None else None

    def _settings(self, k: int):
        """Frame k's settings with its scheduled steps, lr and sigma (also the blur its detail is measured against)."""
        if self.job.timeline is None:
            return self.settings
        from .art import scheduled_settings

        v = self.job.timeline.at(k)
        return scheduled_settings(self.plan.settings(self.clip.size, steps=[v["steps"]]) if "steps" in v
                                  else self.settings, v)

    def done(self, k: int, frame: np.ndarray, result, prepare_s: float, dream_s: float) -> dict:
        self.prev_dream, self.prev_src = frame, self._src  # the quantised frame is what the next continues
        self.prev_smoothed = self._smoothed
        self.last_written = frame
        if self.deflicker is not None:  # ... the dream itself, where the written frame is filtered
            self.prev_dream = self.deflicker.written(frame)
        flow_s = prepare_s + self._flow_s if self._carried else 0.0  # the flow (ahead or here) and the warp
        self.flow_seconds += prepare_s + self._flow_s
        self.dream_seconds += dream_s
        return {"frame": k, "seconds": round(prepare_s + dream_s, 4), "flow_seconds": round(flow_s, 4),
                "dream_seconds": round(dream_s, 4), "carried": self._carried,
                "visible": None if self._visible is None else round(self._visible, 4), "passes": self._passes,
                "objective_end": result.octaves[-1].objective_end, **self._values}

    def checkpoint_image(self) -> np.ndarray:
        extra = [] if self.deflicker is None else [self.last_written]
        return np.concatenate([self.prev_dream, self.prev_src, *extra], axis=1)

    def checkpoint_shape(self) -> tuple[int, int, int]:  # the last dream and its source (, written), side by side
        return (self.clip.size[1], (2 if self.deflicker is None else 3) * self.clip.size[0], 3)

    resumable = True

    def wrap_writer(self, writer):
        from .pipeline import Behind

        return Behind(writer)  # encoding overlaps the next frames' dreams

    def checkpoint_state(self) -> dict:
        return {}

    def finish(self, k: int, image: torch.Tensor) -> torch.Tensor:
        """--deflicker: what is written has its residual filtered along the flow."""
        return image if self.deflicker is None else self.deflicker.apply(image, smoothed_source(self._src, self._settings(k)))


def clip_frames(plan, input_path: Path, job: VideoJob, *, engine=None, recorders=(), show_progress: bool = False):
    """Yield the dreamt frames (HxWx3 uint8) of a clip one by one; nothing is written."""
    from .frames import dream_frames
    from .runtime import Engine

    input_path = Path(input_path)
    clip = plan_clip(input_path, plan, job)
    check_flow_method(job.flow)
    strategy = ClipStart(plan, clip, job, input_path)
    engine = engine or Engine.load(plan)
    frames = (frame for _, frame, _ in dream_frames(strategy, engine, recorders=recorders, show_progress=show_progress))
    if job.interpolate > 1:
        from .tween import ClipTween, tween_frames

        frames = tween_frames(ClipTween(strategy, job.interpolate, job.flow), frames)
    yield from frames


def render_video(plan, input_path: Path, output: Path, job: VideoJob, *, resume: bool = False,
                 show_progress: bool = True, engine=None, clip: ClipPlan | None = None, recorders=()):
    """Dream ``input_path`` frame by frame into ``output`` (.mp4 with the source's audio, .gif, or a PNG folder).

    Frames stream out as they finish; Ctrl-C (or any error) keeps the finished ones as a playable file plus a
    checkpoint that ``resume=True`` continues exactly. ``engine``: a loaded ``Engine`` to reuse.
    Returns a ``frames.FramesResult``.
    """
    from ..io.outputs import kind_for
    from .frames import render_frames
    from .runtime import Engine

    input_path, output = Path(input_path), Path(output)
    clip = clip or plan_clip(input_path, plan, job)
    info, size = clip.info, clip.size
    raft = check_flow_method(job.flow)
    kind = kind_for(output)
    strategy = ClipStart(plan, clip, job, input_path)
    key = strategy.fingerprint()
    settings = strategy.settings
    tmpdir = Path(tempfile.mkdtemp(prefix="dreamreel-audio-"))
    try:
        audio = None
        if kind == "mp4" and info.has_audio:
            audio = clip_audio(input_path, job, clip, tmpdir)

        def sidecar(state) -> dict:
            engine = state.engine
            records = state.records
            per = [r for r in records if r["carried"]]
            return {
                "command": "video",
                "input": str(input_path),
                "output": str(output),
                "source": {"fps": info.fps, "size": list(info.size), "frames": info.n_frames, "duration": info.duration,
                           "audio": info.has_audio, "variable_frame_rate": info.variable_frame_rate},
                "frames": state.frames,
                "fps": clip.fps,
                "size": list(size),
                "audio": bool(audio) and kind == "mp4",
                "start": job.start,
                "end": job.end,
                "every": job.every,
                "flow": job.flow if raft is None else raft,
                "blend": job.blend if job.flow != "none" else None,
                "deflicker": job.deflicker,
                "parameters": plan.to_json(),
                "model": engine.spec.name,
                "weights": plan.to_json()["weights_source"],
                "seed": plan.seed,
                "device": str(engine.device),
                "frame_octaves": [{"size": list(o.size), "steps": o.steps} for o in settings.octaves],
                "first_frame_passes": strategy.warmup,
                "seconds": round(state.seconds, 3),
                "dream_seconds": round(strategy.dream_seconds, 3),
                "flow_seconds": round(strategy.flow_seconds, 3),
                "flow_fraction": round(sum(r["flow_seconds"] for r in per) / max(1e-9, sum(r["dream_seconds"] for r in per)), 4) if per else None,
                "resumed_at_frame": state.start if state.start else None,
                "stopped_early": strategy.stopped_early,
                "per_frame": records,
                "schedules": job.timeline.describe() if job.timeline is not None else {},
                "fingerprint": key,
            }

        from .tween import ClipTween

        return render_frames(strategy, lambda: engine or Engine.load(plan), output, key=key, fps=clip.fps,
                             crf=job.crf, resume=resume, audio_from=audio, recorders=recorders,
                             show_progress=show_progress, sidecar=sidecar,
                             tween=ClipTween(strategy, job.interpolate, job.flow) if job.interpolate > 1 else None,
                             notes={"draft": True} if job.draft else None)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
