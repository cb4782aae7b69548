"""Video input and optical flow: probe and stream-decode clips, estimate and apply dense flow, measure flicker.

Knows nothing about models or encoders. Used by ``dreamreel video`` (carry the previous frame's dream
detail forward along the flow) and by ``benchmarks/flicker.py`` (score how much an output flickers).

Conventions (all arrays are numpy, images HxWxC, flows HxWx2 float32 holding (dx, dy) in pixels):

* ``compute_flow(a, b)`` is defined on **a's** pixel grid and points into **b**:
  ``a[y, x] ~ b[y + flow[y, x, 1], x + flow[y, x, 0]]``.
* ``warp(image, flow)`` is a backward warp that *samples* ``image`` at ``x + flow(x)``, so
  ``warp(b, compute_flow(a, b)) ~ a``. To bring the previous frame (or anything living on its grid,
  such as the float dream detail ``dream - source``) onto the current frame, use the flow from the
  current frame to the previous one: ``warp(prev_detail, compute_flow(cur, prev))``.
* ``occlusion_mask(flow, flow_back)`` lives on ``flow``'s grid: 1 where a pixel of ``a`` is also seen in ``b``.
  ``flow_to_prev(prev, cur)`` returns that flow and mask together for the current frame.
"""

from __future__ import annotations

import functools
import logging
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DreamError

__all__ = [
    "VideoError",
    "VideoInfo",
    "ClipFlow",
    "probe_video",
    "iter_frames",
    "is_video_path",
    "compute_flow",
    "flow_to_prev",
    "resize_flow",
    "warp",
    "occlusion_mask",
    "clip_flow",
    "temporal_inconsistency",
    "FLOW_METHODS",
    "VIDEO_SUFFIXES",
]


class VideoError(DreamError):
    """A video that cannot be used, explained in one line for the user (no ffmpeg log dump)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


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


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run_ffmpeg(args: list[str], timeout: float = 600.0) -> tuple[int, str, str]:
    """Run ffmpeg; returns (exit code, stdout, stderr) as text."""
    try:
        proc = subprocess.run(
            [_ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
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
    if fmt.endswith("_pipe") or fmt == "image2":
        raise _fail(path, "it is a still image, not a video")
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
    dm = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    duration = int(dm.group(1)) * 3600 + int(dm.group(2)) * 60 + float(dm.group(3)) if dm else None
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

    ``start``/``end`` are in seconds: the frames with ``start <= timestamp < end`` (an accurate input seek,
    so a late start does not decode from the beginning, then a trim); ``every``
    keeps every N-th decoded frame counting from the first one at or after ``start``; ``size`` is the
    output (w, h), resized with ``cv2.INTER_AREA``. Grayscale, odd-sized and rotated clips come out as
    displayed RGB. Frames come out as decoded, one per source frame: none duplicated or dropped for variable rates.
    Raises :class:`VideoError` for unusable files or when the range holds no frame, ValueError for bad arguments.
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
    import imageio_ffmpeg

    input_params = ["-ss", f"{start:.6f}"] if start > 0 else []
    # passthrough: one output frame per decoded frame (the image pipe would otherwise duplicate frames to a
    # constant rate, e.g. 10x for a 10 fps GIF whose timebase is 1/100 s).
    output_params = ["-map", f"0:{header.stream_index}", "-an", "-sn", "-dn", "-fps_mode", "passthrough"]
    if end is not None:
        # trim on timestamps (already shifted by the seek) keeps exactly the frames with start <= t < end;
        # an output "-t" would round to the frame rate and sometimes keep one more.
        output_params += ["-vf", f"trim=end={end - start:.6f}"]
    gen = imageio_ffmpeg.read_frames(str(path), input_params=input_params, output_params=output_params)
    n_out = 0
    try:
        try:
            meta = next(gen)
        except (OSError, RuntimeError, IndexError, AttributeError) as err:
            raise _fail(path, "ffmpeg could not start decoding it") from err
        w, h = meta["size"]
        for i, raw in enumerate(_guard(gen, path)):
            if i % every:
                continue
            frame = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            if size is not None and (w, h) != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            else:
                frame = frame.copy()  # writable, independent of ffmpeg's buffer
            n_out += 1
            yield frame
    finally:
        gen.close()
    if n_out == 0:
        span = f"between {start:g}s and {'the end' if end is None else f'{end:g}s'}"
        length = f" (the video is {header.duration:.2f}s long)" if header.duration else ""
        raise _fail(path, f"no frames {span}{length}")


def _guard(gen, path):
    try:
        yield from gen
    except RuntimeError as err:
        first = str(err).splitlines()[1:2]
        raise _fail(path, f"decoding stopped early ({first[0] if first else 'ffmpeg error'})") from err


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


# ---------------------------------------------------------------------------------------------------------------
# Optical flow
# ---------------------------------------------------------------------------------------------------------------

FLOW_METHODS = ("farneback", "raft", "raft_small", "raft_large")

#: Farneback runs at most at this long side; larger frames are flowed on an INTER_AREA downscale and the
#: flow is upsampled. On realshort.mp4 (320x240) flowing at 160x120 is 4x faster than full resolution for the
#: same warp error (2.22 vs 2.18 grey levels, 6.9 unwarped); synthetic shifts stay within 0.2 px.
FARNEBACK_MAX_SIDE = 160


def _gray(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3:
        a = cv2.cvtColor(a[..., :3], cv2.COLOR_RGB2GRAY)
    return a


def _check_pair(prev: np.ndarray, cur: np.ndarray) -> None:
    if prev.shape[:2] != cur.shape[:2]:
        raise ValueError(f"frames differ in size: {prev.shape[:2]} vs {cur.shape[:2]}")
    if min(prev.shape[:2]) < 2:
        raise ValueError(f"frames too small for optical flow: {prev.shape[:2]}")


@functools.lru_cache(maxsize=8)
def _hanning(h: int, w: int) -> np.ndarray:
    return cv2.createHanningWindow((w, h), cv2.CV_32F)


def _global_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """Dominant translation a->b by phase correlation, or None when there is no clear one (scene cut, flat)."""
    h, w = a.shape
    (sx, sy), response = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), _hanning(h, w))
    if response < 0.2 or abs(sx) > w / 2 or abs(sy) > h / 2:
        return None
    return float(sx), float(sy)


def _farneback_flows(a: np.ndarray, b: np.ndarray, both: bool) -> list[np.ndarray]:
    """Gray uint8 a, b -> [flow a->b] (+ [flow b->a] when ``both``), HxWx2 float32 at the working resolution
    (long side <= FARNEBACK_MAX_SIDE; callers bring them to full size with :func:`resize_flow`)."""
    h, w = a.shape
    scale = min(1.0, FARNEBACK_MAX_SIDE / max(h, w))
    if scale < 1.0:
        small = (max(2, round(w * scale)), max(2, round(h * scale)))
        a = cv2.resize(a, small, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, small, interpolation=cv2.INTER_AREA)
    # OpenCV stops its pyramid at 32 px, so at 72-120 px short sides Farneback alone loses motions above
    # ~5 px (a 96x72 frame panning 8 px fails everywhere). A phase-correlation estimate of the global shift
    # seeds it (the camera pan), and Farneback refines the local motion around it: (12, -9) px at 96x72 is
    # then recovered to 0.1 px on average, and the real clip's warp error is unchanged.
    # Window 15 and poly_n=5 recover a (3, -2) px shift to 0.05 px at 96x72, 0.2 px at 320x240; levels=4 is
    # a ceiling (OpenCV builds fewer on small frames).
    shift = _global_shift(a, b)
    pairs = [(a, b, shift)]
    if both:
        pairs.append((b, a, None if shift is None else (-shift[0], -shift[1])))
    flows = []
    for x, y, s in pairs:
        init, flags = None, 0
        if s is not None:
            init = np.empty((*x.shape, 2), np.float32)
            init[..., 0], init[..., 1] = s
            flags = cv2.OPTFLOW_USE_INITIAL_FLOW
        flow = cv2.calcOpticalFlowFarneback(
            x, y, init, pyr_scale=0.5, levels=4, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=flags
        )
        flows.append(flow.astype(np.float32, copy=False))
    return flows


def _raft_checkpoint(name: str) -> Path:
    import torch
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights

    url = {"raft_small": Raft_Small_Weights, "raft_large": Raft_Large_Weights}[name].DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


@functools.lru_cache(maxsize=2)
def _raft_model(name: str, device: str, checkpoint: str):
    import torch
    from torchvision.models import optical_flow

    model = getattr(optical_flow, name)(weights=None, progress=False)
    try:
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    except Exception as err:
        raise VideoError(f"cannot load {name} weights from {checkpoint} (damaged download? delete it and fetch it again)") from err
    return model.eval().to(device)


def _resolve_raft(method: str) -> tuple[str, Path]:
    names = ("raft_small", "raft_large") if method == "raft" else (method,)
    for name in names:
        ckpt = _raft_checkpoint(name)
        if ckpt.is_file():
            return name, ckpt
    ckpt = _raft_checkpoint(names[0])
    raise VideoError(
        f"optical flow '{method}' needs torchvision's {names[0]} weights: put {ckpt.name} "
        f"(from https://download.pytorch.org/models/{ckpt.name}) in {ckpt.parent}, or use the 'farneback' flow method"
    )


_RAFT_MIN_SIDE = 128


def _raft(pairs: list[tuple[np.ndarray, np.ndarray]], method: str) -> list[np.ndarray]:
    import torch
    import torch.nn.functional as F

    name, ckpt = _resolve_raft(method)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _raft_model(name, device, str(ckpt))

    def batch(imgs):
        rgb = [np.repeat(i[..., None], 3, axis=2) if i.ndim == 2 else i[..., :3] for i in imgs]
        t = torch.from_numpy(np.stack(rgb).astype(np.float32)).permute(0, 3, 1, 2).to(device)
        return t / 127.5 - 1.0  # RAFT's normalisation: [0, 255] -> [-1, 1]

    a, b = batch([p[0] for p in pairs]), batch([p[1] for p in pairs])
    h, w = a.shape[-2:]
    # RAFT's correlation pyramid needs sides >= 128: upsample small frames (and scale the flow back).
    up = max(1.0, _RAFT_MIN_SIDE / min(h, w))
    sh, sw = round(h * up), round(w * up)
    if up > 1.0:
        a = F.interpolate(a, size=(sh, sw), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(sh, sw), mode="bilinear", align_corners=False)
    pad = (0, (-sw) % 8, 0, (-sh) % 8)  # and sides divisible by 8
    a, b = F.pad(a, pad, mode="replicate"), F.pad(b, pad, mode="replicate")
    with torch.inference_mode():
        flow = model(a, b)[-1][:, :, :sh, :sw]
    flows = [f for f in flow.permute(0, 2, 3, 1).float().cpu().numpy()]
    return [resize_flow(f, (w, h)) for f in flows]


def compute_flow(prev: np.ndarray, cur: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow HxWx2 float32 (dx, dy) in pixels on ``prev``'s grid, pointing into ``cur``.

    ``prev[y, x] ~ cur[y + dy, x + dx]``. Inputs are RGB (or gray) uint8 frames of equal size. ``method``:
    ``"farneback"`` (OpenCV, CPU, a few ms) or ``"raft_small"``/``"raft_large"``/``"raft"`` (torchvision RAFT,
    small preferred, from the torch hub cache only; a missing checkpoint raises :class:`VideoError` naming it).
    """
    prev, cur = np.asarray(prev), np.asarray(cur)
    _check_pair(prev, cur)
    if method == "farneback":
        h, w = prev.shape[:2]
        return resize_flow(_farneback_flows(_gray(prev), _gray(cur), both=False)[0], (w, h))
    if method in FLOW_METHODS:
        return _raft([(prev, cur)], method)[0]
    raise VideoError(f"unknown optical flow method '{method}' (choose from {', '.join(FLOW_METHODS)})")


def flow_to_prev(prev: np.ndarray, cur: np.ndarray, method: str = "farneback") -> tuple[np.ndarray, np.ndarray]:
    """(flow, mask) on ``cur``'s grid: ``warp(x_prev, flow)`` brings anything on prev's grid onto cur; ``mask``
    is 1 where that is valid (forward-backward consistent), 0 where cur shows something prev did not."""
    prev, cur = np.asarray(prev), np.asarray(cur)
    _check_pair(prev, cur)
    if method == "farneback":
        h, w = prev.shape[:2]
        fwd, back = _farneback_flows(_gray(prev), _gray(cur), both=True)
        mask = occlusion_mask(back, fwd)  # at the working resolution: same verdict, a quarter of the work
        if mask.shape != (h, w):
            mask = (cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.float32)
        return resize_flow(back, (w, h)), mask
    if method in FLOW_METHODS:
        back, fwd = _raft([(cur, prev), (prev, cur)], method)  # both directions in one batch
    else:
        raise VideoError(f"unknown optical flow method '{method}' (choose from {', '.join(FLOW_METHODS)})")
    return back, occlusion_mask(back, fwd)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Flow resampled to ``size`` (w, h) with its vectors rescaled, e.g. to apply a low-res flow to a larger frame."""
    h, w = flow.shape[:2]
    nw, nh = int(size[0]), int(size[1])
    if (nw, nh) == (w, h):
        return flow.astype(np.float32, copy=False)
    out = cv2.resize(flow.astype(np.float32, copy=False), (nw, nh), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= nw / w
    out[..., 1] *= nh / h
    return out


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out[y, x] = image[y + dy, x + dx]`` (bilinear, replicated border), on ``flow``'s grid.

    ``warp(prev_thing, compute_flow(cur, prev))`` moves ``prev_thing`` onto the current frame. ``image`` is
    HxW or HxWxC, uint8 (stays uint8) or float (returned as float32, negative values fine, any C).
    """
    image = np.asarray(image)
    h, w = flow.shape[:2]
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    if image.dtype != np.uint8 and image.dtype != np.float32:
        image = image.astype(np.float32)
    gx, gy = _grid(h, w)
    mx, my = gx + flow[..., 0], gy + flow[..., 1]

    def remap(img):
        return cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    if image.ndim == 2 or image.shape[2] <= 4:
        out = remap(np.ascontiguousarray(image))
        return out.reshape(image.shape)
    return np.concatenate([remap(np.ascontiguousarray(image[..., i : i + 4])).reshape(h, w, -1)
                           for i in range(0, image.shape[2], 4)], axis=2)


def occlusion_mask(flow: np.ndarray, flow_back: np.ndarray, *, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """float32 HxW on ``flow``'s grid: 1 where ``flow`` (a->b) and ``flow_back`` (b->a) agree, else 0.

    The forward-backward check of Sundaram et al. (2010): with ``r = flow_back(x + flow(x))``, a pixel is
    consistent when ``|flow + r|^2 < alpha * (|flow|^2 + |r|^2) + beta``; pixels whose flow leaves the frame
    are 0 too (content entering at the border). For the current frame use
    ``occlusion_mask(compute_flow(cur, prev), compute_flow(prev, cur))``.
    """
    if flow.shape != flow_back.shape:
        raise ValueError(f"flows differ in shape: {flow.shape} vs {flow_back.shape}")
    h, w = flow.shape[:2]
    r = warp(flow_back, flow)
    err = np.sum((flow + r) ** 2, axis=2)
    bound = alpha * (np.sum(flow**2, axis=2) + np.sum(r**2, axis=2)) + beta
    gx, gy = _grid(h, w)
    tx, ty = gx + flow[..., 0], gy + flow[..., 1]
    inside = (tx >= -0.5) & (tx <= w - 0.5) & (ty >= -0.5) & (ty <= h - 0.5)
    return ((err < bound) & inside).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Flicker metric
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipFlow:
    """A source clip's motion, computed once and reused to score several outputs of that clip.

    ``to_prev[i]`` / ``masks[i]`` belong to frame ``i + 1``: its flow into frame ``i`` and its visibility mask.
    """

    to_prev: list[np.ndarray]
    masks: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.to_prev) + 1  # frames covered


def clip_flow(frames: Iterable[np.ndarray], *, method: str = "farneback") -> ClipFlow:
    """Flow to the previous frame and occlusion mask for every frame after the first (streams: keeps no frames)."""
    to_prev, masks = [], []
    prev = None
    for frame in frames:
        if prev is not None:
            f, m = flow_to_prev(prev, frame, method)
            to_prev.append(f)
            masks.append(m)
        prev = frame
    if prev is None or not to_prev:
        raise ValueError("a clip needs at least 2 frames to have motion")
    return ClipFlow(to_prev, masks)


def temporal_inconsistency(frames: Iterable[np.ndarray], flow: ClipFlow) -> float:
    """Flicker in [0, 255] units: mean |frame_i - warp(frame_{i-1}, source flow)| over visible pixels and channels.

    ``flow`` comes from :func:`clip_flow` on the *source* clip, so every output of that clip (dreamt with or
    without temporal carry-over) is judged against the same motion; ~0 for a perfectly stable result.
    Frames may be any size: the flow and masks are resized to them.
    """
    total, weight = 0.0, 0.0
    prev = None
    n = 0
    for n, frame in enumerate(frames, start=1):
        cur = np.asarray(frame, np.float32)
        if cur.ndim == 2:
            cur = cur[..., None]
        if prev is not None:
            if n - 2 >= len(flow.to_prev):
                raise ValueError(f"more frames than the flow covers ({len(flow)})")
            h, w = cur.shape[:2]
            f = resize_flow(flow.to_prev[n - 2], (w, h))
            m = flow.masks[n - 2]
            if m.shape != (h, w):
                m = (cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.float32)
            diff = np.abs(cur - warp(prev, f).reshape(cur.shape)).mean(axis=2)
            total += float((diff * m).sum())
            weight += float(m.sum())
        prev = cur
    if n != len(flow):
        raise ValueError(f"got {n} frames but the flow covers {len(flow)}")
    return total / weight if weight > 0 else 0.0
