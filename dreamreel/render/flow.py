"""Optical flow: estimate and apply dense flow, measure flicker (decoding is in ``io.readers``).

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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..io.readers import VideoError

__all__ = [
    "ClipFlow",
    "compute_flow",
    "flow_to_prev",
    "resize_flow",
    "warp",
    "occlusion_mask",
    "clip_flow",
    "temporal_inconsistency",
    "still_masks",
    "still_change",
    "FLOW_METHODS",
]


# ---------------------------------------------------------------------------------------------------------------
# Optical flow
# ---------------------------------------------------------------------------------------------------------------

FLOW_METHODS = ("farneback", "raft", "raft_small", "raft_large")

#: Farneback runs at most at this long side; larger frames are flowed on an INTER_AREA downscale and the
#: flow is upsampled: faster than full resolution for the same warp error (benchmarks/RESULTS.md, "Optical flow").
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


def resolve_raft(method: str) -> tuple[str, Path]:
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

    name, ckpt = resolve_raft(method)
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
def grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def warp(image: np.ndarray, flow: np.ndarray, *, sharp: bool = False) -> np.ndarray:
    """Backward warp: ``out[y, x] = image[y + dy, x + dx]`` (bilinear, or bicubic with ``sharp``; replicated
    border), on ``flow``'s grid.

    ``warp(prev_thing, compute_flow(cur, prev))`` moves ``prev_thing`` onto the current frame. ``image`` is
    HxW or HxWxC, uint8 (stays uint8) or float (returned as float32, negative values fine, any C).
    """
    image = np.asarray(image)
    h, w = flow.shape[:2]
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    if image.dtype != np.uint8 and image.dtype != np.float32:
        image = image.astype(np.float32)
    gx, gy = grid(h, w)
    mx, my = gx + flow[..., 0], gy + flow[..., 1]

    def remap(img):
        return cv2.remap(img, mx, my, interpolation=cv2.INTER_CUBIC if sharp else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

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
    gx, gy = grid(h, w)
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


def still_masks(source: list[np.ndarray], flow: ClipFlow, *, motion: float = 0.5, change: float = 4.0) -> list[np.ndarray]:
    """Per frame after the first, where the source clip holds still: its flow under ``motion`` px and its grey
    level changing by less than ``change`` (float32 HxW masks, on the source's grid)."""
    out = []
    for prev, cur, f in zip(source, source[1:], flow.to_prev):
        g0, g1 = (_gray(x).astype(np.float32) for x in (prev, cur))
        out.append(((np.hypot(f[..., 0], f[..., 1]) < motion) & (np.abs(g1 - g0) < change)).astype(np.float32))
    return out


def still_change(frames: Iterable[np.ndarray], masks: list[np.ndarray]) -> float:
    """Mean |frame_k - frame_(k-1)| (grey levels, over channels) on the still pixels of :func:`still_masks`:
    the flicker where the picture does not move. Frames are the source's size."""
    total = weight = 0.0
    prev = None
    for k, frame in enumerate(frames):
        cur = np.asarray(frame, np.float32)
        if prev is not None:
            m = masks[k - 1]
            total += float((np.abs(cur - prev).mean(axis=2) * m).sum())
            weight += float(m.sum())
        prev = cur
    return total / max(weight, 1.0)
