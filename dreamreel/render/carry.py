"""What a clip carries from frame to frame: the dream's detail (dream minus its source, smoothed as the dream
smoothed it), warped along the optical flow and masked where the flow cannot be trusted, and the next frame's
start made from it."""

from __future__ import annotations

import numpy as np

#: A pixel keeps the carried detail where the previous source frame, warped by the flow, matches the current
#: one within this many grey levels (after a light blur): occluded, disoccluded and mis-tracked pixels fail.
MATCH_TOLERANCE = 12.0


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
    forward-backward check (two flows), for the same kept pixels and flicker (benchmarks/RESULTS.md,
    "Optical flow"). RAFT computes
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
