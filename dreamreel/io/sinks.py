"""Sinks: where a :class:`~dreamreel.io.writer.FrameWriter`'s frames go, one kind per output format.

A sink has three methods: ``write(frame)`` (HxWx3 uint8, C-contiguous), ``finish()`` (the output is complete;
raises when the encoder failed) and ``kill()`` (stop at once, keep nothing). The writer owns everything else:
the queue and its thread, temporary paths, atomic publishing, resume and audio.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from . import ffmpeg

__all__ = ["Sink", "FfmpegPipe", "PngFolder", "open_sink", "FRAME_NAME", "GIF_FILTER"]

FRAME_NAME = "frame_{:06d}.png"

# Per-frame adaptive palette and Floyd-Steinberg dithering.  Measured against
# ordered (Bayer) dithering, no dithering, Sierra-2-4A and Pillow's quantizers on a
# smooth gradient pan, a saturated "dreamy" zoom and a real clip: error diffusion
# removes the banding of undithered/Bayer palettes (Lab dE after a 2 px blur 1.0-1.2
# vs 1.5-2.1), and Floyd-Steinberg has the least frame-to-frame dither crawl of the
# error-diffusion kernels.  Pillow's GIF writer keeps every frame in memory, so it
# cannot stream; ffmpeg can, in its own process.
GIF_FILTER = (
    "split[a][b];[a]palettegen=stats_mode=single:reserve_transparent=0[p];"
    "[b][p]paletteuse=new=1:dither=floyd_steinberg"
)


class Sink(Protocol):
    def write(self, frame: np.ndarray) -> None: ...
    def finish(self) -> None: ...
    def kill(self) -> None: ...


def fps_arg(fps: float) -> str:
    return str(Fraction(fps).limit_denominator(1_000_000))


class FfmpegPipe:
    """An ffmpeg process reading raw RGB frames on stdin; stderr captured to a temp file."""

    def __init__(self, out: Path, shape: tuple[int, int], fps: float, output_args: list[str],
                 what: str):
        h, w = shape
        self._what = what
        self._log = tempfile.TemporaryFile()
        self._proc = ffmpeg.popen(["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", fps_arg(fps),
                                   "-i", "-", *output_args, os.fspath(out)], loglevel="warning",
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)

    def _failure(self) -> Exception:
        rc = self._proc.wait()
        self._log.seek(0)
        return ffmpeg.failure(self._what, rc, self._log.read())

    def write(self, frame: np.ndarray) -> None:
        try:
            self._proc.stdin.write(frame.data)
        except (BrokenPipeError, OSError, ValueError):
            raise self._failure() from None

    def finish(self) -> None:
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self._proc.wait() != 0:
            raise self._failure()
        self._log.close()

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for f in (self._proc.stdin, self._log):
            try:
                f.close()
            except (BrokenPipeError, OSError):
                pass


class PngFolder:
    """Frames as ``frame_NNNNNN.png`` files in a folder, numbered from ``start``."""

    def __init__(self, folder: Path, start: int):
        self._folder = folder
        self._next = start

    def write(self, frame: np.ndarray) -> None:
        import cv2

        ok, buf = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise RuntimeError("PNG encoding failed")
        with open(self._folder / FRAME_NAME.format(self._next), "wb") as f:  # an OSError keeps its errno (ENOSPC)
            f.write(buf.data)
        self._next += 1

    def finish(self) -> None:
        pass

    def kill(self) -> None:
        pass


def open_sink(kind: str, target: Path, shape: tuple[int, int], fps: float, crf: int,
               start: int = 0):
    """The sink for one output; ``target`` is the writer's temporary file or folder."""
    if kind == "mp4":
        # No B-frames: their reorder delay is hidden by an edit list, and a resumed MP4 (old + new segment joined
        # by stream copy) then had a gap of two frame periods at the join. It costs ~13% of the file at the same
        # CRF (a 36-frame 640x480 dreamt clip: 1.30 MB against 1.15 MB).
        args = ["-an", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-crf", str(int(crf)),
                "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
        return FfmpegPipe(target, shape, fps, args, "encode the MP4")
    if kind == "gif":
        args = ["-lavfi", GIF_FILTER, "-loop", "0", "-f", "gif"]
        return FfmpegPipe(target, shape, fps, args, "encode the GIF")
    return PngFolder(target, start)
