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

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DreamError
from ..io.images import to_uint8
from .frames import FrameStart, fingerprint

from ..options import DEFAULT_BLEND, command_defaults

if TYPE_CHECKING:
    import torch

#: The first frame has no previous dream to continue: it is dreamt up to this many times over (see warmup_passes).
MAX_WARMUP = 10


def video_defaults(flow: str) -> dict:
    return command_defaults("video", flow)


@dataclass(frozen=True)
class VideoJob:
    """What to take from the clip and how to carry the dream from frame to frame."""

    flow: str = "farneback"  # a video.FLOW_METHODS name, or "none"
    blend: float = DEFAULT_BLEND
    start: float = 0.0  # seconds
    end: float | None = None  # seconds (exclusive)
    every: int = 1  # keep every N-th frame (the output plays at fps / N so it keeps the clip's timing)
    crf: int = 18


def job_from_values(values: dict) -> VideoJob:
    """The clip options of a merged option table (see ``options``), checked together."""
    job = VideoJob(flow=values["flow"], blend=values["blend"], start=values["start"], end=values["end"],
                   every=values["every"], crf=values["crf"])
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

#: A pixel keeps the carried detail where the previous source frame, warped by the flow, matches the current
#: one within this many grey levels (after a light blur): occluded, disoccluded and mis-tracked pixels fail.
MATCH_TOLERANCE = 12.0


def warmup_passes(job: VideoJob) -> int:
    """How many times the first frame is dreamt (each pass carrying the last one's detail, like a still clip):
    enough for the carried dream to reach about its steady strength, ~1/(1-blend) frames' worth, at most 10."""
    if job.flow == "none" or job.blend <= 0:
        return 1
    return max(1, min(MAX_WARMUP, round(1.0 / max(1e-6, 1.0 - job.blend))))


def start_image(src: np.ndarray, detail: np.ndarray | None, blend: float, mask: np.ndarray | None = None):
    """A frame's starting point (1,3,H,W tensor): the source plus ``blend`` x the carried detail where ``mask``."""
    import torch

    from ..io.images import from_uint8

    x = from_uint8(src)
    if detail is None:
        return x
    moved = detail * (blend if mask is None else blend * mask[..., None])
    return (x + torch.from_numpy(np.ascontiguousarray(moved, dtype=np.float32)).permute(2, 0, 1)[None]).clamp(0, 1)


def dream_detail(dream: np.ndarray, src: np.ndarray, settings, smoothed: np.ndarray | None = None) -> np.ndarray:
    """What the dream added to its source frame (HxWx3 float32), the part carried to the next frame;
    ``smoothed``: ``smoothed_source(src, settings)`` where it was computed already."""
    return dream.astype(np.float32) / 255.0 - (smoothed if smoothed is not None else smoothed_source(src, settings))


def smoothed_source(frame: np.ndarray, settings) -> np.ndarray:
    """``frame`` (HxWx3 uint8) as float in [0, 1] through the blur schedule of the last octave's steps.

    The dream's smoothing prior blurs the whole image, source included; measuring the dream detail against the
    equally blurred source keeps that loss of sharpness out of what is carried to the next frame (carried, it
    would pile up, about 1/(1-blend) blurs deep, and wash the clip out).
    """
    import torch

    from ..engine import gaussian_blur

    octave = settings.octaves[-1]
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
    if octave.sigma != (0.0, 0.0):
        for i in range(octave.steps):
            if (i + 1) % settings.smooth_every == 0:
                x = gaussian_blur(x, octave.sigma_at(i))
    return x.clamp(0, 1)[0].permute(1, 2, 0).numpy()


def carry_flow(prev: np.ndarray, cur: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(flow, mask) on ``cur``'s grid: ``warp(thing_on_prev_grid, flow)`` moves it onto ``cur``; mask 1 where valid.

    Farneback: one flow (cur -> prev) and a photometric check, half the cost of ``video.flow_to_prev``'s
    forward-backward check (two flows), which would cost a quarter of a one-step dream. On realshort.mp4 at
    128 px both masks keep 99.5% of the pixels and give the same flicker (1.15 vs 1.14 added). RAFT computes
    both directions in one batch anyway, so it keeps the forward-backward check.
    """
    import cv2

    from .flow import flow_to_prev

    if method != "farneback":
        return flow_to_prev(prev, cur, method)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # <= 160 px frames: OpenCV's threads cost more than they save, and contend with torch's
    try:
        return _photometric_flow(prev, cur)
    finally:
        cv2.setNumThreads(threads)


def _photometric_flow(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from .flow import compute_flow, grid, warp

    flow = compute_flow(cur, prev, "farneback")
    g_prev = cv2.GaussianBlur(cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY), (3, 3), 0).astype(np.float32)
    g_cur = cv2.GaussianBlur(cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY), (3, 3), 0).astype(np.float32)
    err = np.abs(warp(g_prev, flow) - g_cur)
    h, w = err.shape
    gx, gy = grid(h, w)
    tx, ty = gx + flow[..., 0], gy + flow[..., 1]
    inside = (tx >= -0.5) & (tx <= w - 0.5) & (ty >= -0.5) & (ty <= h - 0.5)
    return flow, ((err < MATCH_TOLERANCE) & inside).astype(np.float32)



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
    return ClipPlan(info, size, info.fps / job.every, frames, exact)


def audio_segment(src: Path, start: float, end: float | None, folder: Path) -> Path | None:
    """The source's first audio track from ``start`` (stream copy into Matroska, which takes any codec)."""
    from ..io import ffmpeg

    out = folder / "audio.mka"
    args = ["-y", "-ss", f"{start:.6f}", "-i", os.fspath(src)]
    if end is not None:
        args += ["-t", f"{end - start:.6f}"]
    proc = ffmpeg.run(args + ["-map", "0:a:0", "-vn", "-c:a", "copy", os.fspath(out)])
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        return None
    return out


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
        self.stopped_early: str | None = None
        self.dream_seconds = self.flow_seconds = 0.0
        self._src = self._flow = self._smoothed = None
        self._flow_s = 0.0  # seconds of this frame's flow computed ahead (in the decode stage)
        self._carried, self._visible, self._passes = False, None, 1

    def fingerprint(self) -> str:
        job = self.job
        return fingerprint({"plan": self.plan.to_json(), "source": _fingerprint_source(self.input_path),
                            "settings": str(self.settings), "size": self.clip.size, "flow": job.flow,
                            "blend": job.blend, "start": job.start, "end": job.end, "every": job.every,
                            "warmup": self.warmup, "command": "video"})

    def restore(self, last: np.ndarray, state: dict) -> None:  # the checkpoint holds the last dream and its source side by side
        w = last.shape[1] // 2
        self.prev_dream, self.prev_src = last[:, :w], last[:, w:]

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
        detail = mask = None
        self._carried, self._visible = False, None
        self._flow_s = 0.0
        if self.carry and self.prev_dream is not None:
            if self._flow is not None:  # computed ahead, from the same previous source frame
                (flow, mask), self._flow_s = self._flow
            else:
                flow, mask = carry_flow(self.prev_src, src, job.flow)
            detail = warp(dream_detail(self.prev_dream, self.prev_src, settings, self.prev_smoothed), flow)
            self._carried, self._visible = True, float(mask.mean())
        self._passes = self.warmup if self.carry and self.prev_dream is None else 1  # a clip's (or a segment's) first frame
        for i in range(self._passes - 1):  # the first frame: dreamt as if the clip had held still before it
            result = runtime.run_dream(engine, start_image(src, detail, job.blend).to(engine.device), settings,
                               seed=plan.seed * 1_000_003 - (i + 1), show_progress=False)
            detail = dream_detail(to_uint8(result.image), src, settings, self._smoothed)
        from .art import frame_settings  # a --mask video masks frame k

        return FrameStart(start_image(src, detail, job.blend, mask), frame_settings(settings, plan, None, k, {}, self.clip.size),
                          plan.seed * 1_000_003 + k)

    def done(self, k: int, frame: np.ndarray, result, prepare_s: float, dream_s: float) -> dict:
        self.prev_dream, self.prev_src = frame, self._src  # the quantised frame is what the next continues
        self.prev_smoothed = self._smoothed
        flow_s = prepare_s + self._flow_s if self._carried else 0.0  # the flow (ahead or here) and the warp
        self.flow_seconds += prepare_s + self._flow_s
        self.dream_seconds += dream_s
        return {"frame": k, "seconds": round(prepare_s + dream_s, 4), "flow_seconds": round(flow_s, 4),
                "dream_seconds": round(dream_s, 4), "carried": self._carried,
                "visible": None if self._visible is None else round(self._visible, 4), "passes": self._passes,
                "objective_end": result.octaves[-1].objective_end}

    def checkpoint_image(self) -> np.ndarray:
        return np.concatenate([self.prev_dream, self.prev_src], axis=1)

    def checkpoint_shape(self) -> tuple[int, int, int]:  # the last dream and its source, side by side
        return (self.clip.size[1], 2 * self.clip.size[0], 3)

    resumable = True

    def wrap_writer(self, writer):
        from .pipeline import Behind

        return Behind(writer)  # encoding overlaps the next frames' dreams

    def checkpoint_state(self) -> dict:
        return {}

    def finish(self, k: int, image: torch.Tensor) -> torch.Tensor:
        return image


def clip_frames(plan, input_path: Path, job: VideoJob, *, engine=None, recorders=(), show_progress: bool = False):
    """Yield the dreamt frames (HxWx3 uint8) of a clip one by one; nothing is written."""
    from .frames import dream_frames
    from .runtime import Engine

    input_path = Path(input_path)
    clip = plan_clip(input_path, plan, job)
    check_flow_method(job.flow)
    strategy = ClipStart(plan, clip, job, input_path)
    engine = engine or Engine.load(plan)
    for _, frame, _ in dream_frames(strategy, engine, recorders=recorders, show_progress=show_progress):
        yield frame


def render_video(plan, input_path: Path, output: Path, job: VideoJob, *, resume: bool = False,
                 show_progress: bool = True, engine=None, clip: ClipPlan | None = None, recorders=()):
    """Dream ``input_path`` frame by frame into ``output`` (.mp4 with the source's audio, .gif, or a PNG folder).

    Frames stream out as they finish; Ctrl-C (or any error) keeps the finished ones as a playable file plus a
    checkpoint that ``resume=True`` continues exactly. ``engine``: a loaded ``Engine`` to reuse.
    Returns a ``frames.FramesResult``.
    """
    from ..io.writer import kind_for
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
            audio = input_path if job.start == 0 else audio_segment(input_path, job.start, job.end, tmpdir)

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
                "fingerprint": key,
            }

        return render_frames(strategy, lambda: engine or Engine.load(plan), output, key=key, fps=clip.fps,
                             crf=job.crf, resume=resume, audio_from=audio, recorders=recorders,
                             show_progress=show_progress, sidecar=sidecar)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
