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

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DreamError

FLOW_CHOICES = ("farneback", "raft", "raft_small", "raft_large", "none")

#: Per-frame dream defaults (explicit flags and presets win): one octave at the output size, few steps.
#: With flow, a frame continues the previous frame's dream (its detail carried along the motion), so it needs
#: only a small top-up. The top-up is what flickers: the gradient of a stride-32 network does not follow the
#: scene when it moves, so whatever a frame's steps add is partly new detail. Two half-size steps (lr 0.0075)
#: add detail that follows the scene better than one full step (their two jitters average out), so per unit of
#: dream they flicker half as much. benchmarks/flicker.py, realshort.mp4 at 128 px, added flicker (grey levels)
#: and dream strength (mean |dream - source|): none at its defaults 3.26 / 5.70; flow with 1 step at lr 0.015
#: 1.27 / 5.47; flow with these defaults 0.64 / 5.06.
VIDEO_DEFAULTS = {"octaves": 1, "steps": [2], "lr": [(0.0075, 0.0075)]}
#: ``--flow none``: each frame is dreamt from scratch, so it needs full steps for the dream to show.
VIDEO_DEFAULTS_NO_FLOW = {"octaves": 1, "steps": [3]}
#: How much of the previous frame's warped dream detail a frame starts from; the dream builds up to about
#: 1/(1-B) frames' worth of top-ups, and content entering the frame takes a few frames to catch up.
DEFAULT_BLEND = 0.9
#: The first frame has no previous dream to continue: it is dreamt up to this many times over (see warmup_passes).
MAX_WARMUP = 10


def video_defaults(flow: str) -> dict:
    return dict(VIDEO_DEFAULTS_NO_FLOW if flow == "none" else VIDEO_DEFAULTS)


@dataclass(frozen=True)
class VideoJob:
    """What to take from the clip and how to carry the dream from frame to frame."""

    flow: str = "farneback"  # a video.FLOW_METHODS name, or "none"
    blend: float = DEFAULT_BLEND
    start: float = 0.0  # seconds
    end: float | None = None  # seconds (exclusive)
    every: int = 1  # keep every N-th frame (the output plays at fps / N so it keeps the clip's timing)
    crf: int = 18


# ---------------------------------------------------------------- arguments


def _blend(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise ValueError
    return v


def _seconds(text: str) -> float:
    v = float(text)
    if not v >= 0 or v == float("inf"):
        raise ValueError
    return v


def _every(text: str) -> int:
    v = int(text)
    if v < 1:
        raise ValueError
    return v


def add_video_options(parser: argparse.ArgumentParser, *, title: str = "video") -> None:
    """The clip options (shared by ``dreamreel video`` and ``dreamreel batch``); values are parsed by :func:`job_from_args`."""
    g = parser.add_argument_group(title)
    g.add_argument("--flow", default=None, metavar="{farneback,raft,none}",
                   help="optical flow that carries the dream from frame to frame: farneback (OpenCV, CPU, fast), "
                        "raft / raft_small / raft_large (torchvision RAFT, weights from the torch hub cache), "
                        "or none (every frame dreamt on its own) [default: farneback]")
    g.add_argument("--blend", default=None, metavar="B",
                   help=f"weight 0-1 of the previous frame's warped dream detail in the next frame's start "
                        f"(higher: steadier, stronger dream) [default: {DEFAULT_BLEND:g}]")
    g.add_argument("--start", default=None, metavar="T", help="first second of the clip to dream [default: 0]")
    g.add_argument("--end", default=None, metavar="T", help="second at which to stop (exclusive) [default: the end]")
    g.add_argument("--every", default=None, metavar="N",
                   help="dream every N-th frame; the output plays at fps/N so it keeps the clip's timing [default: 1]")
    g.add_argument("--crf", type=int, default=18, metavar="Q", help="H.264 quality, lower is better [default: 18]")


def job_from_args(args) -> VideoJob:
    def value(key, parse, default):
        raw = getattr(args, key, None)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (TypeError, ValueError):
            raise DreamError(f"bad value {raw!r} for --{key}") from None

    flow = value("flow", str, "farneback")
    if flow not in FLOW_CHOICES:
        from .errors import did_you_mean

        raise DreamError(f"unknown --flow {flow!r}", did_you_mean(flow, FLOW_CHOICES) or f"choose from {', '.join(FLOW_CHOICES)}")
    job = VideoJob(flow=flow, blend=value("blend", _blend, DEFAULT_BLEND), start=value("start", _seconds, 0.0),
                   end=value("end", _seconds, None), every=value("every", _every, 1), crf=getattr(args, "crf", 18))
    if job.end is not None and job.end <= job.start:
        raise DreamError(f"--end {job.end:g} must come after --start {job.start:g}")
    if not 0 <= job.crf <= 51:
        raise DreamError(f"bad value {job.crf} for --crf", "use 0 (lossless) to 51")
    return job


def check_flow_method(method: str) -> str | None:
    """The RAFT variant that will run (its weights must be in the torch hub cache), or None for the others."""
    if method.startswith("raft"):
        from .video import _resolve_raft

        return _resolve_raft(method)[0]
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

    from .images import from_uint8

    x = from_uint8(src)
    if detail is None:
        return x
    moved = detail * (blend if mask is None else blend * mask[..., None])
    return (x + torch.from_numpy(np.ascontiguousarray(moved, dtype=np.float32)).permute(2, 0, 1)[None]).clamp(0, 1)


def dream_detail(dream: np.ndarray, src: np.ndarray, settings) -> np.ndarray:
    """What the dream added to its source frame (HxWx3 float32), the part carried to the next frame."""
    return dream.astype(np.float32) / 255.0 - smoothed_source(src, settings)


def smoothed_source(frame: np.ndarray, settings) -> np.ndarray:
    """``frame`` (HxWx3 uint8) as float in [0, 1] through the blur schedule of the last octave's steps.

    The dream's smoothing prior blurs the whole image, source included; measuring the dream detail against the
    equally blurred source keeps that loss of sharpness out of what is carried to the next frame (carried, it
    would pile up, about 1/(1-blend) blurs deep, and wash the clip out).
    """
    import torch

    from .engine import gaussian_blur

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

    from .video import flow_to_prev

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

    from .video import _grid, compute_flow, warp

    flow = compute_flow(cur, prev, "farneback")
    g_prev = cv2.GaussianBlur(cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY), (3, 3), 0).astype(np.float32)
    g_cur = cv2.GaussianBlur(cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY), (3, 3), 0).astype(np.float32)
    err = np.abs(warp(g_prev, flow) - g_cur)
    h, w = err.shape
    gx, gy = _grid(h, w)
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
    from .video import probe_video

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


def _audio_segment(src: Path, start: float, end: float | None, folder: Path) -> Path | None:
    """The source's first audio track from ``start`` (stream copy into Matroska, which takes any codec)."""
    import imageio_ffmpeg

    out = folder / "audio.mka"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-ss", f"{start:.6f}", "-i", os.fspath(src)]
    if end is not None:
        cmd += ["-t", f"{end - start:.6f}"]
    cmd += ["-map", "0:a:0", "-vn", "-c:a", "copy", os.fspath(out)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True)
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        return None
    return out


def _fingerprint_source(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def render_video(plan, input_path: Path, output: Path, job: VideoJob, *, resume: bool = False,
                 show_progress: bool = True, engine=None, clip: ClipPlan | None = None, frame_recorders=()) -> dict:
    """Dream ``input_path`` frame by frame into ``output`` (.mp4 with the source's audio, .gif, or a PNG folder).

    Frames stream out as they finish; Ctrl-C (or any error) keeps the finished ones as a playable file plus a
    checkpoint that ``resume=True`` continues exactly. ``engine``: a loaded ``render.Engine`` to reuse.
    Returns the sidecar's content.
    """
    from tqdm import tqdm

    from .encode import kind_for, open_writer
    from .images import to_uint8
    from .render import Engine, run_dream
    from .schedule import Checkpoint, fingerprint
    from .sidecar import write_sidecar
    from .video import VideoError, iter_frames, warp

    input_path, output = Path(input_path), Path(output)
    clip = clip or plan_clip(input_path, plan, job)
    info, size = clip.info, clip.size
    settings = plan.settings(size)
    raft = check_flow_method(job.flow)
    kind = kind_for(output)
    carry = job.flow != "none" and job.blend > 0
    warmup = warmup_passes(job)
    key = fingerprint({"plan": plan.to_json(), "source": _fingerprint_source(input_path), "settings": str(settings),
                       "size": size, "flow": job.flow, "blend": job.blend, "start": job.start, "end": job.end,
                       "every": job.every, "warmup": warmup, "command": "video"})
    checkpoint = Checkpoint(output)
    start, last, records, finished = checkpoint.begin(resume, output, key)
    if finished is not None:
        return finished
    prev_dream, prev_src = None, None
    if last is not None:  # the checkpoint holds the last dream and its source side by side
        w = last.shape[1] // 2
        prev_dream, prev_src = last[:, :w], last[:, w:]
    engine = engine or Engine.load(plan)
    tmpdir = Path(tempfile.mkdtemp(prefix="dreamreel-audio-"))
    audio = None
    if kind == "mp4" and info.has_audio:
        audio = input_path if job.start == 0 else _audio_segment(input_path, job.start, job.end, tmpdir)
    frames_in = iter_frames(input_path, start=job.start, end=job.end, every=job.every, size=size)
    appended, stopped_early = start, None
    dream_seconds = flow_seconds = 0.0
    t_start = time.perf_counter()
    bar = tqdm(total=max(clip.frames, start), initial=start, desc="video", unit="frame", dynamic_ncols=True,
               leave=False, disable=not show_progress)
    writer = None
    try:
        writer = open_writer(output, fps=clip.fps, crf=job.crf, audio_from=audio, append=start > 0)
        k = -1
        while True:
            try:
                src = next(frames_in)
            except StopIteration:
                break
            except VideoError as exc:
                if appended == 0:
                    raise
                stopped_early = str(exc)  # a damaged tail: keep what decoded
                break
            k += 1
            if k < start:
                continue  # resuming: these frames are in the output already
            t0 = time.perf_counter()
            carried, visible, detail, mask = False, None, None, None
            if carry and prev_dream is not None:
                flow, mask = carry_flow(prev_src, src, job.flow)
                detail = warp(dream_detail(prev_dream, prev_src, settings), flow)
                carried, visible = True, float(mask.mean())
            t1 = time.perf_counter()
            passes = warmup if carry and k == 0 else 1
            for i in range(passes - 1):  # the first frame: dreamt as if the clip had held still before it
                result = run_dream(engine, start_image(src, detail, job.blend).to(engine.device), settings,
                                   seed=plan.seed * 1_000_003 - (i + 1), show_progress=False)
                detail = dream_detail(to_uint8(result.image), src, settings)
            from .art import frame_settings  # art (issue 14): a --mask video masks frame k

            result = run_dream(engine, start_image(src, detail, job.blend, mask).to(engine.device),
                               frame_settings(settings, plan, None, k, {}, size),
                               seed=plan.seed * 1_000_003 + k, desc=f"frame {k + 1}", show_progress=False,
                               callbacks=[r.on_step for r in frame_recorders])
            frame = to_uint8(result.image)  # the quantised frame is both what is written and what the next continues
            t2 = time.perf_counter()
            writer.append(frame)
            for r in frame_recorders:
                r.frame_done(frame, k)
            appended, prev_dream, prev_src = k + 1, frame, src
            flow_seconds += t1 - t0
            dream_seconds += t2 - t1
            records.append({"frame": k, "seconds": round(t2 - t0, 4), "flow_seconds": round(t1 - t0, 4) if carried else 0.0,
                            "dream_seconds": round(t2 - t1, 4), "carried": carried,
                            "visible": None if visible is None else round(visible, 4), "passes": passes,
                            "objective_end": result.octaves[-1].objective_end})
            bar.update(1)
        writer.close()
    except BaseException as exc:
        bar.close()
        new = appended - start
        if writer is not None:
            if new > 0:  # keep the finished frames as a playable file
                try:
                    writer.close()
                except Exception as err:
                    writer.abort()
                    print(f"dreamreel: could not finish {output}: {err}", file=sys.stderr)
                    new = 0
            else:
                writer.abort()
        if new > 0:
            checkpoint.save(key, appended, np.concatenate([prev_dream, prev_src], axis=1), records)
        shutil.rmtree(tmpdir, ignore_errors=True)
        if isinstance(exc, KeyboardInterrupt):
            if appended:
                print(f"dreamreel: interrupted: {output} holds {appended} of {clip.frames} frames; "
                      f"continue with --resume", file=sys.stderr)
            else:
                print(f"dreamreel: interrupted before the first frame of {output} was finished; nothing written",
                      file=sys.stderr)
            exc.reported = True
        elif new > 0 or start > 0:
            print(f"dreamreel: {output} holds the {appended} frames finished before the error; "
                  f"continue with --resume", file=sys.stderr)
        raise
    finally:
        if hasattr(frames_in, "close"):
            frames_in.close()
    bar.close()
    shutil.rmtree(tmpdir, ignore_errors=True)
    checkpoint.remove()
    if stopped_early:
        print(f"dreamreel: warning: {stopped_early}; {output} has the {appended} frames before it", file=sys.stderr)
    wall = time.perf_counter() - t_start
    per = [r for r in records if r["carried"]]
    data = {
        "command": "video",
        "input": str(input_path),
        "output": str(output),
        "source": {"fps": info.fps, "size": list(info.size), "frames": info.n_frames, "duration": info.duration,
                   "audio": info.has_audio, "variable_frame_rate": info.variable_frame_rate},
        "frames": appended,
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
        "first_frame_passes": warmup,
        "seconds": round(wall, 3),
        "dream_seconds": round(dream_seconds, 3),
        "flow_seconds": round(flow_seconds, 3),
        "flow_fraction": round(sum(r["flow_seconds"] for r in per) / max(1e-9, sum(r["dream_seconds"] for r in per)), 4) if per else None,
        "resumed_at_frame": start if start else None,
        "stopped_early": stopped_early,
        "per_frame": records,
        "fingerprint": key,
    }
    write_sidecar(output, data)
    return data


# ---------------------------------------------------------------- the command


def cmd_video(args) -> int:
    from .cli import _plan_from_args, _print_plan
    from .render import check_outputs, check_video_output

    output = check_video_output(Path(args.output))
    source = Path(args.input)
    overlay = check_video_output(Path(args.overlay)) if args.overlay else None
    check_outputs([source], [output, overlay])
    job = job_from_args(args)
    plan, _ = _plan_from_args(args, defaults=video_defaults(job.flow))
    raft = check_flow_method(job.flow)
    clip = plan_clip(source, plan, job)
    settings = plan.settings(clip.size)
    info = clip.info
    if args.dry_run:
        audio = "audio" if info.has_audio else "no audio"
        vfr = ", variable frame rate" if info.variable_frame_rate else ""
        print(f"input      {source}  {info.size[0]}x{info.size[1]}, {info.n_frames} frames at {info.fps:.4g} fps, {audio}{vfr}")
        print(f"output     {output}  {'' if clip.exact else 'about '}{clip.frames} frames at {clip.fps:.4g} fps, "
              f"{clip.size[0]}x{clip.size[1]}")
        carry = "none (every frame on its own)" if job.flow == "none" else f"{raft or job.flow}, blend {job.blend:g}"
        print(f"flow       {carry}")
        print("each frame:")
        _print_plan(plan, settings)
        return 0
    from .recorders import FrameOverlay, recording

    recs = [FrameOverlay(overlay, fps=clip.fps, feature=args.overlay_feature, append=args.resume)] if overlay else []
    with recording(recs):
        data = render_video(plan, source, output, job, resume=args.resume, show_progress=not args.quiet, clip=clip,
                            frame_recorders=recs)
    audio = ", audio kept" if data["audio"] else ""
    print(f"wrote {output}: {data['frames']} frames at {data['fps']:.4g} fps{audio} ({data['seconds']:.1f} s)", file=sys.stderr)
    return 0


def register(sub) -> argparse.ArgumentParser:
    """Add the ``video`` subcommand to the CLI's subparsers."""
    from .options import add_dream_arguments, add_frame_overlay_arguments

    p = sub.add_parser("video", help="dream a video clip, coherently along its motion", description=(
        "Dream a clip frame by frame. Each frame starts from its source frame plus the previous frame's dream "
        "detail, warped along the optical flow and weighted by --blend, then gets a few dream steps "
        f"(defaults per frame: --octaves 1 --steps {VIDEO_DEFAULTS['steps'][0]} --lr {VIDEO_DEFAULTS['lr'][0][0]:g}; "
        f"with --flow none, where each frame is dreamt from scratch: --steps {VIDEO_DEFAULTS_NO_FLOW['steps'][0]} and "
        "the dream --lr). The first frame is dreamt as if the clip had held still before it, so the dream does not "
        "fade in. Lower --lr or raise --blend for a steadier dream. "
        "The output keeps the clip's frame rate, size (unless --size) and audio track (MP4)."))
    p.add_argument("input", metavar="INPUT", help="video file (MP4, MOV, MKV, WebM, AVI, animated GIF, ...)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="OUT.mp4 (with the source's audio), OUT.gif or a folder OUT/ of PNGs; OUT.json beside it")
    add_video_options(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted render from its last finished frame")
    add_dream_arguments(p)
    add_frame_overlay_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_video)
    return p
