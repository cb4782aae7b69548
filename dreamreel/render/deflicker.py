"""Deflicker (``video --deflicker S``): a temporal filter of the dream's residual along the optical flow.

A dreamt frame is its (smoothed) source plus a residual, the dream. The carried residual already follows the
scene; what flickers is the part each frame's few steps add anew, jittered differently every frame, which shows
most where the picture is still. The written frame's residual is a running average along the flow, where the
flow is trusted (its mask m):

    written_k = source_k + (1 - S m) * (dream_k - source_k) + S m * warp(written_{k-1} - source_{k-1})

The filter sits beside the loop, not in it: the next frame continues the unfiltered dream, so the dream builds
up as it would without the filter (the same strength), and only what is written is averaged, which keeps the
residual that persists and damps the part that changes from frame to frame.
"""

from __future__ import annotations

import numpy as np

#: With a flow: at least halves the still-region flicker of realshort.mp4 and of a still with a moving patch at
#: about the same dream strength (benchmarks/flicker.py; the numbers are in benchmarks/RESULTS.md).
DEFAULT_DEFLICKER = 0.6


def default_strength(flow: str, given: float | None) -> float:
    """The strength a clip render uses: the one given, else the default where there is a flow to filter along."""
    if given is not None:
        return given
    return 0.0 if flow == "none" else DEFAULT_DEFLICKER


class ResidualFilter:
    """The filter's state over a clip: the last written frame, and this frame's carried written residual."""

    def __init__(self, strength: float):
        self.strength = strength
        self.prev_written: np.ndarray | None = None
        self._carried: tuple[np.ndarray, np.ndarray] | None = None
        self._raw: np.ndarray | None = None

    def prepare(self, carried: np.ndarray | None, mask: np.ndarray | None) -> None:
        """Before frame k's dream: the last written residual carried onto it along the flow, with the flow's mask
        (None: frame k is not filtered)."""
        self._carried = None if carried is None or self.prev_written is None else (carried, mask)

    def apply(self, dream, base: np.ndarray):
        """Frame k's dream (1,3,H,W tensor in [0, 1]) and its smoothed source -> what is written; the dream
        itself is kept (quantised) for the next frame to continue."""
        from ..io.images import to_uint8

        self._raw = None
        if self._carried is None:
            return dream
        self._raw = to_uint8(dream)
        return filter_residual(dream, base, *self._carried, self.strength)

    def written(self, frame: np.ndarray) -> np.ndarray:
        """After frame k: ``frame`` is what was written; returns the frame the next one continues (the dream)."""
        self.prev_written = frame
        return frame if self._raw is None else self._raw


def filter_residual(dream, base: np.ndarray, carried: np.ndarray, mask: np.ndarray | None, strength: float):
    """``dream`` (1,3,H,W tensor in [0, 1]) with its residual over ``base`` (the smoothed source, HxWx3 float)
    averaged with ``carried`` (the last written residual on this frame's grid, HxWx3) by ``strength`` x ``mask``
    (HxW, 1 where the flow is trusted; None: everywhere)."""
    import torch

    def tensor(a: np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        return (t.permute(2, 0, 1) if t.dim() == 3 else t[None])[None].to(dream.device)

    weight = strength * (tensor(mask) if mask is not None else 1.0)
    target = tensor(base) + tensor(carried)  # the source with the last written dream on it
    return (dream + weight * (target - dream)).clamp(0, 1)
