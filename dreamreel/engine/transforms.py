"""Transformation robustness: a random small change of view (shift, scale, rotation) before every step.

Lucid/lucent's ``transform.standard_transforms`` idea: the gradient is taken through a randomly jittered,
scaled and rotated view of the image, so only what survives small changes of view grows. Features that
depend on the exact pixel grid (the stride-32 ripples and one-pixel colour fringes of a plain dream) average
out; structure that a network recognises from any nearby view (eyes, fur, faces, objects) adds up.

Each transform is a closure ``fn(generator) -> Warp`` (lucent style); ``compose`` chains closures into one
affine ``Warp``, applied as a single reflection-padded resample (chained resamples would blur more). The
gradient flows back through the resample into the untransformed image, on the device, with no host sync.
A ``Warp`` is exactly invertible (``inverse()``), and the same generator state gives the same warps.

    warp = standard_transforms(jitter=16, scale=0.1, rotate=5)(generator)
    view = warp.apply(image)            # what the network sees this step
    back = warp.inverse().apply(view)   # the image again (inside the frame)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Warp:
    """An affine map of content, in pixels about the image centre: content at ``q`` moves to ``A q + t``."""

    a: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 1.0)  # row-major 2x2
    t: tuple[float, float] = (0.0, 0.0)  # (dx, dy) pixels

    @property
    def identity(self) -> bool:
        return self.a == (1.0, 0.0, 0.0, 1.0) and self.t == (0.0, 0.0)

    def then(self, other: "Warp") -> "Warp":
        """This warp followed by ``other``."""
        a0, b0, c0, d0 = self.a
        a1, b1, c1, d1 = other.a
        a = (a1 * a0 + b1 * c0, a1 * b0 + b1 * d0, c1 * a0 + d1 * c0, c1 * b0 + d1 * d0)
        t = (a1 * self.t[0] + b1 * self.t[1] + other.t[0], c1 * self.t[0] + d1 * self.t[1] + other.t[1])
        return Warp(a, t)

    def inverse(self) -> "Warp":
        a, b, c, d = self.a
        det = a * d - b * c
        ia = (d / det, -b / det, -c / det, a / det)
        return Warp(ia, (-(ia[0] * self.t[0] + ia[1] * self.t[1]), -(ia[2] * self.t[0] + ia[3] * self.t[1])))

    def theta(self, h: int, w: int) -> list[list[float]]:
        """``F.affine_grid``'s matrix (output -> input, normalised coordinates) for an (h, w) image."""
        inv = self.inverse()
        a, b, c, d = inv.a
        sx, sy = w / 2.0, h / 2.0
        return [[a, b * sy / sx, inv.t[0] / sx], [c * sx / sy, d, inv.t[1] / sy]]

    def apply(self, image: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """The warped (N,C,H,W) image, reflection-padded; differentiable with respect to ``image``."""
        if self.identity:
            return image
        h, w = image.shape[-2:]
        theta = torch.tensor([self.theta(h, w)], dtype=torch.float32)
        if image.is_cuda:  # a pinned copy does not stall the step loop
            theta = theta.pin_memory().to(image.device, non_blocking=True)
        else:
            theta = theta.to(image.device)
        grid = F.affine_grid(theta.expand(image.shape[0], 2, 3), list(image.shape), align_corners=False)
        return F.grid_sample(image, grid.to(image.dtype), mode=mode, padding_mode="reflection", align_corners=False)


Transform = Callable[[torch.Generator], Warp]


def _uniform(generator: torch.Generator, n: int = 1) -> list[float]:
    return torch.rand(n, generator=generator, dtype=torch.float64).tolist()


def jitter(px: float) -> Transform:
    """A random shift of up to ``px`` pixels each way (sub-pixel: the resample interpolates)."""

    def fn(generator: torch.Generator) -> Warp:
        u = _uniform(generator, 2)
        return Warp(t=((2 * u[0] - 1) * px, (2 * u[1] - 1) * px))

    return fn


def random_scale(scales: float | Sequence[float]) -> Transform:
    """A random scale: one of ``scales`` (lucent), or uniform in [1 - s, 1 + s] for a number ``s``."""

    def fn(generator: torch.Generator) -> Warp:
        u = _uniform(generator)[0]
        if isinstance(scales, (int, float)):
            s = 1.0 + (2 * u - 1) * float(scales)
        else:
            s = float(scales[min(len(scales) - 1, int(u * len(scales)))])
        return Warp((s, 0.0, 0.0, s))

    return fn


def random_rotate(degrees: float | Sequence[float]) -> Transform:
    """A random rotation: one of ``degrees``, or uniform in [-d, d] for a number ``d``."""

    def fn(generator: torch.Generator) -> Warp:
        u = _uniform(generator)[0]
        if isinstance(degrees, (int, float)):
            deg = (2 * u - 1) * float(degrees)
        else:
            deg = float(degrees[min(len(degrees) - 1, int(u * len(degrees)))])
        r = math.radians(deg)
        return Warp((math.cos(r), -math.sin(r), math.sin(r), math.cos(r)))

    return fn


def random_flip(p: float = 0.5) -> Transform:
    """A left-right mirror with probability ``p``."""

    def fn(generator: torch.Generator) -> Warp:
        return Warp((-1.0, 0.0, 0.0, 1.0)) if _uniform(generator)[0] < p else Warp()

    return fn


def compose(*transforms: Transform) -> Transform:
    """The transforms in order, as one warp (one resample)."""

    def fn(generator: torch.Generator) -> Warp:
        out = Warp()
        for t in transforms:
            out = out.then(t(generator))
        return out

    return fn


def standard_transforms(jitter_px: float = 16, scale: float = 0.1, rotate: float = 5.0, fine_px: float = 4) -> Transform:
    """Lucent's recipe without its constant padding (a photo is reflected instead): jitter, scale, rotate, fine jitter."""
    parts = []
    if jitter_px > 0:
        parts.append(jitter(jitter_px))
    if scale > 0:
        parts.append(random_scale(scale))
    if rotate > 0:
        parts.append(random_rotate(rotate))
    if fine_px > 0:
        parts.append(jitter(fine_px))
    return compose(*parts)
