"""Watching a long render: ``--preview FILE`` (the latest frame, rewritten as it renders) and ``--draft``.

The preview is replaced atomically (written beside itself, then renamed), so an image viewer or a file browser
never reads half a file. ``--draft`` is the same job at half the width and height (a quarter of the pixels) with
one step per frame, to check a timeline's motion before the long render.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DreamError, short_path
from .recorders import Recorder

PREVIEW_SUFFIXES = (".jpg", ".jpeg", ".png")


def check_preview(path: Path) -> None:
    """A preview path the render can write: a .jpg or .png file where a file can go (one-line DreamError)."""
    from .runtime import check_output_path

    if path.suffix.lower() not in PREVIEW_SUFFIXES:
        raise DreamError(f"--preview {short_path(path)}: the preview is an image", "name it FILE.jpg or FILE.png")
    check_output_path(path, folder=False, what="preview")


class PreviewRecorder(Recorder):
    """Writes every ``every``-th frame, and the last one, to ``path`` with its number under it."""

    def __init__(self, path: Path, *, every: int = 10, label: str = ""):
        self.path, self.every, self.label = Path(path), every, label
        self.outputs = [self.path]
        self.last: tuple[np.ndarray, int] | None = None
        self.shown = -1  # the frame the file shows
        self.writes = 0

    def frame_done(self, frame: np.ndarray, index: int) -> None:
        self.last = (frame, index)
        if (index + 1) % self.every == 0:
            self._write()

    def __exit__(self, *exc):
        if self.last is not None and self.shown != self.last[1]:  # the end (or an interruption): the latest frame
            try:
                self._write()
            except OSError:
                if exc[0] is None:
                    raise
                self.note = f"the preview {self.path} could not be updated"
        return False

    def _write(self) -> None:
        import imageio.v3 as iio

        from ..io.images import atomic_path
        from .draw import caption_bar

        frame, index = self.last
        image = caption_bar(frame, f"frame {index + 1}{self.label}")
        with atomic_path(self.path) as tmp:
            if self.path.suffix.lower() == ".png":
                iio.imwrite(tmp, image)
            else:
                iio.imwrite(tmp, image, quality=90)
        self.shown, self.writes = index, self.writes + 1


def preview_recorders(values: dict) -> list[Recorder]:
    if not values.get("preview"):
        return []
    label = " (draft)" if values.get("draft") else ""
    return [PreviewRecorder(Path(values["preview"]), every=values["preview_every"], label=label)]


def draft_values(values: dict, full_size: tuple[int, int], min_side: int = 1) -> dict:
    """--draft: ``values`` at half the width and height of ``full_size``, one octave and one step for every
    frame (a zoom's shifts are in its timeline: :func:`draft_timeline`); refused below the model's ``min_side``."""
    w, h = full_size
    size = (max(1, round(w / 2)), max(1, round(h / 2)))
    if min(size) < min_side:
        raise DreamError(f"--draft halves {w}x{h} to {size[0]}x{size[1]}, below the model's {min_side} px a side",
                         "drop --draft, or use a larger --size")
    return dict(values, size=size, steps=[1], octaves=1, first_octaves=1)


def draft_timeline(timeline):
    """A zoom timeline for --draft: shifts in pixels halved with the size, and no 'steps' (one step per frame)."""
    from .timeline import Keyframe, Timeline

    keys = []
    for key in timeline.keys:
        v = {k: val for k, val in key.values.items() if k != "steps"}
        for name in ("shift_x", "shift_y"):
            if name in v:
                v[name] = v[name] / 2
        keys.append(Keyframe(key.frame, v))
    out = Timeline(keys, {k: s for k, s in timeline.schedules.items() if k != "steps"})
    if timeline.series or not timeline.schedules:
        out.bind(timeline.frames, timeline.fps)
        for name in ("shift_x", "shift_y"):
            if name in out.series:
                out.series[name] = [v / 2 for v in out.series[name]]
    return out
