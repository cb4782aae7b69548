"""Renders: a still, a zoom, a clip; the frame loop, flow carry, recorders and drawing.

The public surface, imported on first use (``import dreamreel.render`` loads no torch)::

    from dreamreel.render import render_frames, ZoomStart, ClipStart, dream_still, load_timeline

``render_frames`` is the one frame loop; a zoom (``ZoomStart``) or a clip (``ClipStart``) is the strategy that
says where each frame starts. Most callers want the verbs in ``dreamreel`` instead.
"""

import importlib

_PUBLIC = {
    "render_frames": "frames", "FramesResult": "frames", "FrameStrategy": "frames", "Checkpoint": "frames",
    "ZoomStart": "zoom", "zoom_frames": "zoom", "render_zoom": "zoom", "ClipStart": "clip", "clip_frames": "clip",
    "render_video": "clip", "dream_still": "still", "Timeline": "timeline", "load_timeline": "timeline",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
