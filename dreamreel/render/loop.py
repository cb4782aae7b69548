"""Seamless loops: ``zoom --loop`` plays endlessly without a jump.

A loop of N output frames renders N + L frames f_0 .. f_{N+L-1}: the head B = f_0..f_{L-1}, the plain
frames P = f_L..f_{N-1} and the tail A = f_N..f_{N+L-1} (A continues P as any zoom does). The tail fades
into the head: m_j = lerp(A_j, B_j, s((j + 0.5) / L)), s = smoothstep. As a circle, B -> P -> A -> (fade) -> B
has no jump: m_{L-1} is almost B_{L-1}, which P_0 continues; m_0 is almost A_0, which continues P's last.
A circle has no seam; the file wraps at its calmest change (measured on the written frames), so a player
that stalls at the wrap stalls where least happens. The sidecar records that change, the median change,
and the largest change of the fade against the largest of the plain frames.
"""

from __future__ import annotations

import numpy as np


def default_loop_frames(frames: int, fps: float) -> int:
    """The cross-fade length: a third of the loop, at least 2 frames.

    A fade step mixes two ordinary steps plus the fade itself, s' / L times the difference of the two
    images: a long fade keeps that small (zoom at 160 px, 48 frames: with L = 12 the middle fade step was
    11.0 grey levels against a median step of 11.0; with L = 16 see the README).
    """
    return max(2, frames // 3)


def smoothstep(t: float) -> float:
    return t * t * (3 - 2 * t)


def blend(tail: np.ndarray, head: np.ndarray, t: float) -> np.ndarray:
    """uint8 frames: (1-t)*tail + t*head, rounded."""
    out = tail.astype(np.float32) * (1 - t) + head.astype(np.float32) * t
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def loop_order(frames: int, overlap: int, start: int = 0) -> list[tuple[int, int, float]]:
    """The loop's N frames as (tail index, head index, weight of the head): plain frames have head -1.

    Rendered frames f_0 .. f_{N+L-1}: B = f_0..f_{L-1} (the head), P = f_L..f_{N-1} (plain), A = f_N..f_{N+L-1}
    (the tail, continuing P). The fade frames are m_j = lerp(A_j, B_j, s((j + 0.5) / L)). The circle is
    m_0..m_{L-1}, P; the file starts at its position ``start``.
    """
    n, L = frames, overlap
    fade = [(n + j, j, smoothstep((j + 0.5) / L)) for j in range(L)]
    plain = [(k, -1, 0.0) for k in range(L, n)]
    circle = fade + plain
    return circle[start:] + circle[:start]


class LoopWriter:
    """Wraps a frame writer: takes the N + L rendered frames in order, writes the N frames of the loop.

    The circle of the loop is B -> P -> A where each arrow is an ordinary render step and the fade turns A
    back into B; every step of it, the file's last-to-first included, is an ordinary step or a fade step
    (a mix of two ordinary steps). The file starts in the middle of the fade, so all N + L frames are held
    (uint8, in memory) until the last one arrives; then the N frames are written.
    """

    def __init__(self, writer, frames: int, overlap: int, rotate: bool = True):
        if not 1 <= overlap <= frames // 2:
            raise ValueError(f"overlap must be 1..frames/2, got {overlap} for {frames} frames")
        self.writer, self.frames, self.overlap = writer, frames, overlap
        self.held: list[np.ndarray] = []
        self.received = 0
        self.written = 0
        self.steps: list[float] = []
        self.start = 0
        self.rotate = rotate  # False: the file starts at the circle's position 0 (a track muxed in sync needs that)

    @property
    def max_frames(self) -> int:
        return self.frames + self.overlap

    @property
    def done(self) -> bool:
        return self.received >= self.max_frames

    def append(self, frame: np.ndarray) -> None:
        if self.done:
            raise ValueError(f"a loop of {self.frames} frames takes {self.max_frames} rendered frames")
        self.held.append(np.asarray(frame).copy())
        self.received += 1
        if self.done:
            circle = [self.held[tail] if head < 0 else blend(self.held[tail], self.held[head], t)
                      for tail, head, t in loop_order(self.frames, self.overlap)]
            self.held = []
            self.steps = [float(np.abs(circle[i].astype(np.float32) - circle[i - 1]).mean()) for i in range(len(circle))]
            self.start = int(np.argmin(self.steps)) if self.rotate else 0  # the calmest change of the circle is the file's wrap
            for f in circle[self.start:] + circle[: self.start]:
                self.writer.append(f)
                self.written += 1

    def close(self):
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()

    def __enter__(self):
        self.writer.__enter__()
        return self

    def __exit__(self, *exc):
        return self.writer.__exit__(*exc)

    def describe(self) -> dict:
        n, L = self.frames, self.overlap
        out = {"overlap": L, "rendered_frames": n + L, "start": self.start,
               "circle": f"fade 0..{L - 1} (fade j: rendered frame {n}+j fading into rendered frame j), then rendered frames "
                         f"{L}..{n - 1}; the file starts at its position {self.start}"}
        if self.steps:
            plain = self.steps[L + 1:]  # changes between two plain frames
            out.update({"wrap_change": round(self.steps[self.start], 3), "median_change": round(float(np.median(self.steps)), 3),
                        "max_fade_change": round(max(self.steps[: L + 1]), 3),
                        "max_plain_change": round(max(plain), 3) if plain else None})
        return out


def loop_seam(frames: list[np.ndarray]) -> dict:
    """The last-to-first change against the frame-to-frame changes (mean absolute difference, grey levels)."""
    f = [a.astype(np.float32) for a in frames]
    steps = [float(np.abs(f[i] - f[i - 1]).mean()) for i in range(1, len(f))]
    seam = float(np.abs(f[0] - f[-1]).mean())
    return {"seam": seam, "median_step": float(np.median(steps)), "max_step": float(max(steps))}
