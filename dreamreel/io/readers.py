"""Readers: probe and stream-decode video clips (stills live in ``images``). One clear line for a bad file.

Knows nothing about models or encoders.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DreamError
from . import ffmpeg

__all__ = ["VideoError", "VideoInfo", "probe_video", "iter_frames", "is_video_path", "VIDEO_SUFFIXES"]


class VideoError(DreamError):
    """A video that cannot be used, explained in one line for the user (no ffmpeg log dump)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


#: Why a still (PNG, JPEG, a one-frame GIF ...) is not a clip, with the command that dreams it.
STILL_NOT_VIDEO = "it is a still image, not a video (dream a still with: dreamreel dream)"


def _fail(path, reason: str) -> VideoError:
    return VideoError(f"cannot read video '{path}': {reason}")


# ---------------------------------------------------------------------------------------------------------------
# Probing and decoding
# ---------------------------------------------------------------------------------------------------------------

#: Suffixes treated as video by :func:`is_video_path`. ``.gif`` is handled separately (only animated GIFs).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ogv", ".wmv", ".flv", ".3gp"})


@dataclass
class VideoInfo:
    """What :func:`probe_video` learns without decoding: display size (after rotation metadata) as (w, h)."""

    path: Path
    fps: float
    size: tuple[int, int]
    n_frames: int | None
    duration: float | None
    has_audio: bool
    variable_frame_rate: bool | None


@dataclass
class _Header:
    fmt: str
    stream_index: int
    size: tuple[int, int]
    fps: float | None
    tbr: float | None
    duration: float | None
    has_audio: bool


def _run_ffmpeg(args: list[str], timeout: float = 600.0) -> tuple[int, str, str]:
    """Run ffmpeg (its own log level: the header dump); returns (exit code, stdout, stderr) as text."""
    try:
        proc = ffmpeg.run(args, loglevel=None, timeout=timeout)
    except subprocess.TimeoutExpired as err:  # pragma: no cover - pathological files only
        raise VideoError(f"ffmpeg took more than {timeout:.0f}s to read '{args[1]}'") from err
    return proc.returncode, proc.stdout.decode("utf-8", errors="replace"), proc.stderr.decode("utf-8", errors="replace")


_STREAM_RE = re.compile(r"^\s*Stream #0:(\d+)\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$", re.M)
_SIZE_RE = re.compile(r"[ ,](\d+)x(\d+)(?=[ ,\[]|$)")


def _rate(line: str, unit: str) -> float | None:
    m = re.search(r"([\d.]+)(k?) " + unit + r"\b", line)
    if not m:
        return None
    value = float(m.group(1)) * (1000.0 if m.group(2) else 1.0)
    return value if value > 0 else None


def _explain_open_error(text: str) -> str:
    if "No such file or directory" in text:
        return "file not found"
    if "Permission denied" in text:
        return "permission denied"
    if "Is a directory" in text:
        return "it is a directory, not a video file"
    if "moov atom not found" in text:
        return "the file is incomplete or not a video (no MP4 index found; was the download or copy cut short?)"
    if "Invalid data found when processing input" in text or "End of file" in text:
        return "not a video ffmpeg can read (unrecognised or damaged data)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"ffmpeg could not open it ({lines[-1] if lines else 'no error message'})"


def _read_header(path) -> _Header:
    """One cheap ffmpeg call (``ffmpeg -i``, no decoding): container, first real video stream, audio presence."""
    p = Path(path)
    if not p.exists():
        raise _fail(path, "file not found")
    if p.is_dir():
        raise _fail(path, "it is a directory, not a video file")
    if p.stat().st_size == 0:
        raise _fail(path, "the file is empty")
    _, _, text = _run_ffmpeg(["-i", str(p)], timeout=60.0)
    m = re.search(r"^Input #0, (.+?), from ", text, re.M)
    if not m:
        raise _fail(path, _explain_open_error(text))
    fmt = m.group(1)
    if fmt == "tty":
        raise _fail(path, "it is a text file, not a video")
    if fmt.endswith("_pipe") or fmt == "image2" or (fmt == "gif" and not is_video_path(p)):
        raise _fail(path, STILL_NOT_VIDEO)
    streams = _STREAM_RE.findall(text)
    video = [(int(i), rest) for i, kind, rest in streams if kind == "Video" and "attached pic" not in rest]
    has_audio = any(kind == "Audio" for _, kind, _ in streams)
    if not video:
        if not streams:
            raise _fail(path, "it contains no video frames (empty or unfinished recording?)")
        raise _fail(path, "no video stream (is it a video file?)")
    index, line = video[0]
    sm = _SIZE_RE.search(line)
    if not sm:
        raise _fail(path, "ffmpeg reports no frame size for its video stream")
    w, h = int(sm.group(1)), int(sm.group(2))
    if w <= 0 or h <= 0:
        raise _fail(path, f"its video stream has an invalid frame size {w}x{h}")
    # Rotation metadata (phones): ffmpeg autorotates when decoding, so report the displayed size.
    after = text[text.find(line):]
    nxt = re.search(r"^\s*Stream #0:", after[len(line):], re.M)
    block = after[: len(line) + (nxt.start() if nxt else len(after))]
    rm = re.search(r"rotation of (-?[\d.]+) degrees", block) or re.search(r"rotate\s*:\s*(-?\d+)", block)
    if rm and round(float(rm.group(1))) % 180 == 90:
        w, h = h, w
    duration = ffmpeg.duration_in(text)
    return _Header(fmt, index, (w, h), _rate(line, "fps"), _rate(line, "tbr"), duration or None, has_audio)


def probe_video(path) -> VideoInfo:
    """Size, frame rate, frame count, duration and audio presence of a video, decoding only its first frame.

    Three short ffmpeg calls: ``-i`` for the header; a stream copy of the video packets to ffmpeg's
    ``framecrc`` muxer, which lists every packet's timestamp (demux only: milliseconds for short clips,
    disk-bound for long ones); a decode of the first frame. ``n_frames`` counts the packets an edit list
    does not discard; ``fps`` is the mean rate of their timestamps (exactly the nominal rate for
    constant-rate clips; for variable-rate ones it keeps the clip's length when the frames are re-timed
    at a constant rate). ``variable_frame_rate`` is True when
    frame intervals differ from their mean by more than 10% beyond timestamp rounding (e.g. phone clips
    that slow down in the dark), None when there are too few timestamps to tell. Empty, truncated,
    zero-frame, unreadable or not-a-video files raise :class:`VideoError`.
    """
    header = _read_header(path)
    code, out, err = _run_ffmpeg(
        ["-i", str(path), "-map", f"0:{header.stream_index}", "-c", "copy", "-f", "framecrc", "-"]
    )
    tb = re.search(r"^#tb \d+: (\d+)/(\d+)", out, re.M)
    # "stream, dts, pts, duration, size, crc[, F=flags]"; flag 0x4 marks packets an edit list discards.
    packets = re.findall(r"^\d+,\s*-?\d+,\s*(-?\d+),\s*-?\d+,\s*\d+,\s*0x[0-9a-fA-F]+(?:,\s*F=0x([0-9a-fA-F]+))?", out, re.M)
    pts = sorted(int(p) for p, flags in packets if not int(flags or "0", 16) & 0x4)
    n_frames = len(pts)
    if code != 0 and not packets:
        raise _fail(path, _explain_open_error(err))
    if n_frames == 0:
        raise _fail(path, "it contains no video frames")
    if "partial file" in err:
        raise _fail(path, f"the file is truncated (only {n_frames} frames readable; was the download or copy cut short?)")
    _, _, dec = _run_ffmpeg(["-i", str(path), "-map", f"0:{header.stream_index}", "-frames:v", "1", "-f", "null", "-"])
    if not re.search(r"frame=\s*1\b", dec):
        raise _fail(path, "its first frame cannot be decoded (damaged file or unsupported codec?)")
    fps, vfr, span = header.fps or header.tbr, None, None
    pts = [p for p in pts if p > -(2**62)]  # drop packets without a timestamp
    if tb and len(pts) >= 2 and pts[-1] > pts[0]:
        tick = int(tb.group(1)) / int(tb.group(2))
        deltas = np.diff(pts)
        mean = (pts[-1] - pts[0]) / (len(pts) - 1)
        fps = 1.0 / (mean * tick)
        vfr = bool(np.abs(deltas - mean).max() > max(1.0, 0.1 * mean))
        span = (pts[-1] - pts[0] + mean) * tick
    if not fps:
        raise _fail(path, "ffmpeg reports no frame rate for its video stream")
    duration = header.duration or span
    return VideoInfo(Path(path), float(fps), header.size, n_frames, duration, header.has_audio, vfr)


class _DropSizeWarning(logging.Filter):
    # imageio_ffmpeg warns whenever the decoded size differs from the coded one, i.e. for every rotated phone clip.
    def filter(self, record: logging.LogRecord) -> bool:
        return "is different from the source frame size" not in record.getMessage()


logging.getLogger("imageio_ffmpeg").addFilter(_DropSizeWarning())


def iter_frames(
    path,
    *,
    start: float = 0.0,
    end: float | None = None,
    every: int = 1,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Stream a video's frames as RGB uint8 HxWx3 arrays, one at a time (never extracted to disk).

    ``start``/``end`` are in seconds: the frames with ``start <= timestamp < end`` (decoded from the first
    frame, the ones before ``start`` dropped: a seek lands on frames some streams cannot start from); ``every``
    keeps every N-th decoded frame counting from the first one at or after ``start``; ``size`` is the
    output (w, h), resized with ``cv2.INTER_AREA``. Grayscale, odd-sized and rotated clips come out as
    displayed RGB. Frames come out as decoded, one per source frame: none duplicated or dropped for variable rates.
    Raises :class:`VideoError` for unusable files, when the range holds no frame, or when ffmpeg reports a decoding
    error before a frame (the frames before it came out clean); ValueError for bad arguments.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"need 0 <= start < end, got start={start}, end={end}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (width, height) with positive values, got {size}")
    header = _read_header(path)
    return _iter_frames(path, header, start, end, every, None if size is None else (int(size[0]), int(size[1])))


def _iter_frames(path, header: _Header, start, end, every, size) -> Iterator[np.ndarray]:
    w, h = header.size
    trim = ([f"start={start:.6f}"] if start > 0 else []) + ([f"end={end:.6f}"] if end is not None else [])
    # Decode from the first frame and drop the frames before ``start`` on their timestamps: an input seek (-ss
    # before -i) starts decoding at the container's sync sample before ``start``, which in a stream with periodic
    # intra refresh or recovery points is no clean start (green and grey blocks, or no frames at all). trim keeps
    # exactly the frames with start <= t < end; an output "-t" would round to the frame rate. passthrough: one
    # output frame per decoded frame (a constant rate would duplicate frames, e.g. 10x for a 10 fps GIF whose
    # timebase is 1/100 s). level+info: the log tags decoder errors "[error]".
    args = ["-nostats", "-i", str(path), "-map", f"0:{header.stream_index}", "-an", "-sn", "-dn", "-fps_mode",
            "passthrough", *(["-vf", "trim=" + ":".join(trim)] if trim else []), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    log = tempfile.TemporaryFile()
    proc = ffmpeg.popen(args, loglevel="level+info", stdout=subprocess.PIPE, stderr=log)
    scan = _LogScan(log)
    n_in = n_out = 0
    nbytes = w * h * 3
    try:
        while True:
            raw = proc.stdout.read(nbytes)
            if not raw:
                break
            if len(raw) < nbytes:
                scan.read()
                raise _fail(path, f"decoding stopped early ({scan.last_error or 'an incomplete frame'})")
            if n_in == 0 and (got := scan.output_size()) not in (None, (w, h)):
                raise _fail(path, f"ffmpeg decodes it at {got[0]}x{got[1]}, not at the {w}x{h} its header gives")
            # The decoder logs an error before it hands out the frame concerned: errors logged by now concern this
            # frame or one decoded before it, which it may continue from. Either way this frame is suspect.
            scan.read()
            if scan.errors:
                what = "decoding stopped early" if n_out else "ffmpeg reports decoding errors"
                raise _fail(path, f"{what} ({scan.last_error})")
            i, n_in = n_in, n_in + 1
            if i % every:
                continue
            frame = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            if size is not None and (w, h) != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            else:
                frame = frame.copy()  # writable, independent of the pipe's buffer
            n_out += 1
            yield frame
        if proc.wait() != 0:
            scan.read()
            raise _fail(path, f"decoding stopped early ({scan.last_error or f'ffmpeg exit {proc.returncode}'})")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        log.close()
    if n_out == 0:
        span = f"between {start:g}s and {'the end' if end is None else f'{end:g}s'}"
        length = f" (the video is {header.duration:.2f}s long)" if header.duration else ""
        raise _fail(path, f"no frames {span}{length}")


_LOG_ERROR_RE = re.compile(r"^(?:\[(\w+)[^\]]*\] )?\[(?:error|fatal)\] (.*)$")


class _LogScan:
    """An ffmpeg log (``-loglevel level+info``) read as it grows: its error lines and the output's frame size."""

    def __init__(self, f):
        self._f, self._pos, self._rest, self._header = f, 0, "", []
        self.errors, self.last_error = 0, None

    def read(self) -> None:
        """Read what was logged since the last call (``errors`` counts the error lines so far)."""
        self._f.seek(self._pos)
        chunk = self._f.read()
        self._pos += len(chunk)
        lines = (self._rest + chunk.decode("utf-8", "replace")).split("\n")
        self._rest = lines.pop()  # an unfinished line waits for the next read
        for line in lines:
            if m := _LOG_ERROR_RE.match(line.strip()):
                self.errors += 1
                self.last_error = f"{m.group(1)}: {m.group(2).strip()}" if m.group(1) else m.group(2).strip()
            elif len(self._header) < 400:
                self._header.append(line)

    def output_size(self) -> tuple[int, int] | None:
        self.read()
        out = [i for i, line in enumerate(self._header) if "Output #0" in line]
        for line in self._header[out[0]:] if out else []:
            if " Video: " in line and (m := _SIZE_RE.search(line)):
                return int(m.group(1)), int(m.group(2))
        return None


def is_video_path(path) -> bool:
    """True for video suffixes (:data:`VIDEO_SUFFIXES`) and for an existing *animated* .gif (a still GIF is an image)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    if suffix == ".gif" and p.is_file():
        try:
            from PIL import Image

            with Image.open(p) as im:
                return bool(getattr(im, "is_animated", False))
        except Exception:
            return False
    return False
