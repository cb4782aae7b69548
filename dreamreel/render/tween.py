"""In-between frames (``--interpolate N``): N-1 frames after each dreamt one, moved along the motion.

An in-between at fraction s of the way from frame A to the next dreamt frame B samples A a fraction s along
the motion and B a fraction 1 - s back along it, and blends them, (1-s)*A' + s*B', so detail moves instead of
cross-fading. A zoom knows its motion exactly (``ZoomTween``: the warp ``Motion.apply`` does, read off as a
displacement field); a clip uses the optical flow of its source frames both ways (``ClipTween``), and where a
pixel is seen by one frame only (uncovered behind something moving, or entering at a border) that frame's
pixel is taken. After the last dreamt frame a zoom's motion carries on for N-1 frames, a clip holds its
last frame, so the file plays N x the frames at N x the rate and lasts as long as it would without.

``TweenWriter`` wraps the render's writer: each dreamt frame appended brings the in-betweens before it, so a
partial file always ends on a dreamt frame, and ``end`` adds the tail once the render is complete.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from .flow import compute_flow, grid, occlusion_mask, resize_flow, warp

#: The long side the in-betweens' forward flow is computed at (see ClipTween._forward).
FORWARD_SIDE = 80


def file_frames(dreamt: int, factor: int, *, complete: bool = False) -> int:
    """Frames in the file after ``dreamt`` dreamt frames: the in-betweens between them, and the tail when
    ``complete``."""
    if dreamt <= 0:
        return 0
    return dreamt * factor if complete else (dreamt - 1) * factor + 1


def _inside(flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = grid(h, w)
    tx, ty = gx + flow[..., 0], gy + flow[..., 1]
    return ((tx >= -0.5) & (tx <= w - 0.5) & (ty >= -0.5) & (ty <= h - 0.5)).astype(np.float32)


def detail_energy(image: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image: the energy of the finest detail (what a blur or a blend loses)."""
    lap = _laplacian(np.asarray(image, np.float32))
    return _mean_square(lap)


def _laplacian(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_32F)


def _mean_square(a: np.ndarray, b: np.ndarray | None = None) -> float:
    x = a.ravel()
    return float(np.dot(x, x if b is None else b.ravel())) / max(1, x.size)


def keep_detail(image: np.ndarray, energy: float, *, most: float = 2.0) -> np.ndarray:
    """``image`` (float HxWx3) with its finest band (image minus a 1 px blur) scaled so that its detail energy is
    ``energy`` again (the gain at most ``most``; never below 1).

    Blending two frames whose fine detail differs (each dreamt frame's steps renew part of it) halves that detail's
    contrast at s = 0.5, and resampling softens it: the in-between would look blurred beside the dreamt frames.
    The band is put back at the dreamt frames' energy instead: the two detail layers keep their place (both are
    moved along the motion), only their contrast is restored, as histogram-preserving texture blends do.
    """
    import cv2

    image = np.ascontiguousarray(image, np.float32)
    low = cv2.GaussianBlur(image, (0, 0), 1.0)
    high = image - low
    lap_low, lap_high = _laplacian(low), _laplacian(high)
    qa, qb, qc = _mean_square(lap_high), 2 * _mean_square(lap_low, lap_high), _mean_square(lap_low) - energy
    if qa <= 1e-9 or qb * qb - 4 * qa * qc < 0:
        return image
    gain = min(most, max(1.0, (-qb + np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)))
    return low + gain * high


def inbetween(a: np.ndarray, b: np.ndarray, flow_ab: np.ndarray, flow_ba: np.ndarray, s: float,
              seen_a: np.ndarray | None = None, seen_b: np.ndarray | None = None,
              energy: tuple[float, float] | None = None) -> np.ndarray:
    """The frame a fraction ``s`` (0..1) of the way from ``a`` to ``b`` (HxWx3 uint8 each, uint8 out).

    ``flow_ab`` lives on a's grid (``a[y] ~ b[y + flow_ab]``), ``flow_ba`` on b's; ``seen_a`` (on a's grid) is 1
    where a's pixel is also in b, ``seen_b`` likewise (None: everywhere). The flows to the in-between's grid are
    Super SloMo's (Jiang et al. 2018) linear combination of the two; sampling is bicubic, which keeps more of
    the detail than a bilinear half-pixel shift, and :func:`keep_detail` restores the rest to ``energy``
    (a's and b's :func:`detail_energy`, interpolated at s; None: computed here).
    """
    f_ta = -(1 - s) * s * flow_ab + s * s * flow_ba
    f_tb = (1 - s) * (1 - s) * flow_ab - s * (1 - s) * flow_ba
    wa = warp(a.astype(np.float32), f_ta, sharp=True)
    wb = warp(b.astype(np.float32), f_tb, sharp=True)
    va = (1 - s) * _inside(f_ta) * (1.0 if seen_a is None else warp(seen_a, f_ta))
    vb = s * _inside(f_tb) * (1.0 if seen_b is None else warp(seen_b, f_tb))
    total = va + vb
    mixed = (va[..., None] * wa + vb[..., None] * wb) / np.maximum(total, 1e-6)[..., None]
    plain = (1 - s) * wa + s * wb  # seen by neither (both flows unsure): the plain blend of the two samples
    out = np.where((total > 1e-3)[..., None], mixed, plain)
    ea, eb = energy if energy is not None else (detail_energy(a), detail_energy(b))
    out = keep_detail(out, (1 - s) * ea + s * eb)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def fractions(factor: int) -> list[float]:
    return [i / factor for i in range(1, factor)]


def motion_field(motion, h: int, w: int, depth=None) -> np.ndarray:
    """HxWx2 displacement (dx, dy) of ``motion`` (over ``depth``, a 3D camera's; None: flat): the next frame's
    pixel x shows this frame's x + field(x).

    Read off the warp itself (``motion.apply`` on images of the pixel coordinates; bilinear sampling of a linear
    ramp is exact), so it is the motion the render applies, whatever that motion is made of.
    """
    import torch

    xs = torch.arange(w, dtype=torch.float32).expand(h, w) / max(1, w - 1)
    ys = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) / max(1, h - 1)
    ramps = torch.stack([xs, ys, torch.zeros(h, w)])[None]
    if depth is not None:
        ramps = ramps.to(depth.device)
    moved = motion.apply(ramps, depth)[0].cpu()
    gx, gy = grid(h, w)
    field = np.empty((h, w, 2), np.float32)
    field[..., 0] = moved[0].numpy() * max(1, w - 1) - gx
    field[..., 1] = moved[1].numpy() * max(1, h - 1) - gy
    return field


@dataclass
class Point:
    """A dreamt frame and what its in-betweens need: the motion that led to it (zoom) or its source (clip)."""

    frame: np.ndarray
    motion: object = None
    source: np.ndarray | None = None
    flow_back: tuple[np.ndarray, np.ndarray] | None = None  # the render's flow to the previous source, its mask


class ZoomTween:
    """In-betweens of a zoom along its exact motion; the tail continues the last frame's motion."""

    method = "motion"

    def __init__(self, strategy, factor: int):
        self.strategy, self.factor = strategy, factor
        self._fields: dict = {}

    def point(self) -> Point:
        return Point(self.strategy.last, motion=self.strategy.motion)

    def _field(self, move, h: int, w: int) -> np.ndarray:
        motion, depth = move
        if depth is not None:  # a depth video's frames differ: no cache
            return motion_field(motion, h, w, depth)
        key = (repr(motion), h, w)
        if key not in self._fields:
            if len(self._fields) > 64:
                self._fields.clear()
            self._fields[key] = motion_field(motion, h, w)
        return self._fields[key]

    def between(self, a: Point, b: Point) -> list[np.ndarray]:
        h, w = b.frame.shape[:2]
        back = self._field(b.motion, h, w)  # on b's grid, into a; a's into b is minus it (small, smooth motions)
        energy = detail_energy(a.frame), detail_energy(b.frame)
        return [inbetween(a.frame, b.frame, -back, back, s, energy=energy) for s in fractions(self.factor)]

    def tail(self, last: Point) -> list[np.ndarray]:
        h, w = last.frame.shape[:2]
        field = self._field(last.motion, h, w)
        frame, energy = last.frame.astype(np.float32), detail_energy(last.frame)
        return [np.clip(np.rint(keep_detail(warp(frame, s * field, sharp=True), energy)), 0, 255).astype(np.uint8)
                for s in fractions(self.factor)]


class ClipTween:
    """In-betweens of a dreamt clip along its source frames' optical flow (both ways), occlusion-aware."""

    method = "flow"

    def __init__(self, strategy, factor: int, flow_method: str):
        self.strategy, self.factor = strategy, factor
        self.flow_method = "farneback" if flow_method == "none" else flow_method

    def point(self) -> Point:
        carried = self.strategy.carried
        return Point(self.strategy.last_written, source=self.strategy.prev_src,
                     flow_back=None if carried is None else carried[1:])

    def between(self, a: Point, b: Point) -> list[np.ndarray]:
        f_ab = self._forward(a.source, b.source)
        if b.flow_back is not None:  # the flow the render carried the dream along, and its mask
            f_ba, seen_b = b.flow_back
        else:
            f_ba = compute_flow(b.source, a.source, self.flow_method)
            seen_b = occlusion_mask(f_ba, f_ab)
        seen_a = occlusion_mask(f_ab, f_ba)
        energy = detail_energy(a.frame), detail_energy(b.frame)
        return [inbetween(a.frame, b.frame, f_ab, f_ba, s, seen_a, seen_b, energy) for s in fractions(self.factor)]

    def _forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow a -> b (Farneback at half the size, at most 80 px a side: in an in-between its error counts
        (1-s)s or (1-s)^2, and this is the one flow the render did not compute already)."""
        if self.flow_method != "farneback":
            return compute_flow(a, b, self.flow_method)
        import cv2

        h, w = a.shape[:2]
        f = min(0.5, FORWARD_SIDE / max(h, w))
        if f * min(h, w) < 16:
            return compute_flow(a, b)
        small = (max(2, round(w * f)), max(2, round(h * f)))
        shrink = [cv2.resize(x, small, interpolation=cv2.INTER_AREA) for x in (a, b)]
        return resize_flow(compute_flow(*shrink), (w, h))

    def tail(self, last: Point) -> list[np.ndarray]:
        return [last.frame] * (self.factor - 1)  # no next source frame: the last frame stays its time on screen


def tween_frames(tween, frames):
    """``frames`` (the dreamt ones, as a render yields them) with ``tween``'s in-betweens and tail among them."""
    prev = None
    for frame in frames:
        point = tween.point()
        if prev is not None:
            yield from tween.between(prev, point)
        yield frame
        prev = point
    if prev is not None:
        yield from tween.tail(prev)


@contextlib.contextmanager
def one_cv_thread():
    """OpenCV on one thread: on these small frames its threads cost more than they save, and contend with torch's."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


class TweenWriter:
    """A frame writer that writes each dreamt frame after the in-betweens that lead to it."""

    def __init__(self, writer, tween, *, dreamt_before: int = 0):
        self.writer, self.tween, self.factor = writer, tween, tween.factor
        self.prev: Point | None = tween.point() if dreamt_before else None  # a resumed render's last frame
        self.written = file_frames(dreamt_before, tween.factor)
        self.seconds = 0.0
        self.inbetweens = 0

    def append(self, frame: np.ndarray) -> None:
        point = self.tween.point()
        t0 = time.perf_counter()
        with one_cv_thread():
            frames = [] if self.prev is None else self.tween.between(self.prev, point)
        self._count(frames, t0)
        for f in frames:
            self.writer.append(f)
        self.writer.append(frame)
        self.written += len(frames) + 1
        self.prev = point

    def end(self) -> None:
        """The render is complete: the tail after the last dreamt frame."""
        if self.prev is None:
            return
        t0 = time.perf_counter()
        with one_cv_thread():
            frames = self.tween.tail(self.prev)
        self._count(frames, t0)
        for f in frames:
            self.writer.append(f)
        self.written += len(frames)

    def _count(self, frames: list, t0: float) -> None:
        self.seconds += time.perf_counter() - t0
        self.inbetweens += len(frames)

    def close(self):
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()

    def describe(self, dreamt: int) -> dict:
        return {"factor": self.factor, "method": self.tween.method, "dreamt_frames": dreamt,
                "inbetweens_this_run": self.inbetweens, "inbetween_seconds": round(self.seconds, 4)}
