"""Per-frame hooks of the effects (masks, music, loops, guides) for frame renders (zoom, and clips where noted).

``zoom_effects`` turns the options into the ZoomJob's effect fields, once. ``render_zoom`` calls, for every
frame k: ``frame_values`` (the timeline's values with the audio's reaction on top), ``frame_settings`` (the
step's lr/sigma from them, and frame k's mask), ``frame_record`` (what the sidecar's per-frame entry gains),
and once ``zoom_sidecar``; ``loop_writer`` wraps the writer for ``--loop``. Nothing here runs when no art
option is set.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import DreamError


def frame_values(job, k: int, values: dict) -> dict:
    """The timeline's values for frame k, with --react's (frame k of the track; a loop's extra frames wrap)."""
    if not job.react:
        return values
    index = loop_position(job, k) if job.loop else k
    return {**values, **job.react[index]}


def loop_position(job, k: int) -> int:
    """Where rendered frame k of a --loop render lands on the circle (for the audio): the tail and head share a slot.

    (The file starts at the circle's calmest change, known only at the end; with --audio the track starts at
    position 0 of the circle, so the loop is in sync with a track that loops with it from the circle's start.)"""
    from .loop import loop_order

    order = loop_order(job.frames, job.loop)
    for i, (tail, head, _) in enumerate(order):
        if k in (tail, head):
            return i
    return k % job.frames


def mask_for(plan, k: int, values: dict, size):
    """Frame k's mask: a timeline 'mask' key (a path, or 'none'), else the --mask video's frame k, else None (the plan's still)."""
    from ..engine.masks import open_mask

    if "mask" in values:
        path = values["mask"]
        if path in ("", "none"):
            return False
        source = open_mask(path, plan.mask_feather)
        source.check(size)
        return source.frame(k)
    masks = plan.mask_source(size) if plan.mask else None
    if masks is not None and masks.video:
        return masks.frame(k)
    return None


def scheduled_settings(settings, values: dict):
    """``settings`` with a frame's lr and sigma (from a schedule or --react) in every octave."""
    if not ("lr" in values or "sigma" in values):
        return settings
    octs = []
    for o in settings.octaves:
        lr = (values["lr"], values["lr"]) if "lr" in values else o.lr
        sigma = (values["sigma"], values["sigma"]) if "sigma" in values else o.sigma
        octs.append(replace(o, lr=lr, sigma=sigma))
    return replace(settings, octaves=tuple(octs))


def frame_settings(settings, plan, k: int, values: dict, size):
    """``settings`` with frame k's lr/sigma (scheduled, or from --react) and mask (timeline key or mask video)."""
    settings = scheduled_settings(settings, values)
    changes = {}
    mask = mask_for(plan, k, values, size)
    if mask is False:
        changes["mask"] = None
    elif mask is not None:
        changes["mask"] = mask
    return replace(settings, **changes) if changes else settings


def frame_record(values: dict, settings) -> dict:
    out = {}
    for key in ("loudness", "onset"):
        if key in values:
            out[key] = values[key]
    if "lr" in values:
        out["lr"] = round(values["lr"], 6)
    if "sigma" in values:
        out["sigma"] = round(values["sigma"], 6)
    if settings.mask is not None:
        out["mask"] = settings.mask.label
    return out


def check_zoom(job, plan, size) -> None:
    """Validate the timeline's masks before any compute (each readable, with the output's aspect)."""
    from ..engine.masks import open_mask

    for key in job.timeline.keys:
        path = key.values.get("mask")
        if path not in (None, "", "none"):
            open_mask(path, plan.mask_feather).check(size)


def loop_writer(writer, job):
    """--loop: a writer that takes job.frames + job.loop rendered frames and writes the loop's job.frames."""
    from .loop import LoopWriter

    return LoopWriter(writer, job.frames, job.loop, rotate=not job.react)  # with a track: in sync from position 0


def zoom_sidecar(job, plan, loop=None) -> dict:
    """The zoom sidecar's effect fields: audio and reaction, ``loop`` (its LoopWriter, else None), mask, tiles."""
    out = {}
    if job.audio_features is not None:
        out["audio"] = {**job.audio_features.describe(), "muxed": bool(job.audio),
                        "react": [{"key": r.key, "low": r.low, "high": r.high, "feature": r.feature} for r in job.reacts]}
    if loop is not None:
        out["loop"] = loop.describe()
    if plan.mask:
        out["mask"] = plan.mask_source().describe()
    if plan.tile:
        out["tile"] = {"size": plan.tile, "overlap": plan.overlap}
    return out


def zoom_effects(values: dict, *, frames_given: bool) -> dict:
    """The ZoomJob fields of zoom's --audio/--react and --loop/--loop-frames (a track sets ``frames``); one-line
    DreamErrors for bad combinations."""
    fps = values["fps"]
    out = {"frames": values["frames"]}
    if values.get("audio"):
        from .audio import analyse, parse_react, react_values

        if frames_given:
            raise DreamError("--frames and --audio both set the length",
                             "drop --frames: with --audio the track's duration at --fps sets it")
        reacts = parse_react(values["react"]) if values.get("react") else []
        features = analyse(values["audio"], fps)
        out.update(reacts=reacts, audio_features=features, react=react_values(features, reacts),
                   audio=Path(values["audio"]), frames=features.frames)  # the track is muxed where the output holds it
    if values.get("loop"):
        from .loop import default_loop_frames

        frames = out["frames"]
        if frames < 4:
            raise DreamError(f"--loop needs at least 4 frames (got {frames})")
        n = default_loop_frames(frames, fps) if values.get("loop_frames") is None else values["loop_frames"]
        if not 1 <= n <= frames // 2:
            raise DreamError(f"--loop-frames {n} is out of range for {frames} frames", f"use 1-{frames // 2}")
        out["loop"] = n
    return out
