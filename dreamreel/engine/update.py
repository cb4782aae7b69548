"""How one step updates the image, in two layouts: the whole image at once, or tile by tile in strips.

``Dreamer.dream`` runs the octave loop once for both; an ``UpdateRule`` is what differs between them:
where the source and the working image live, the carry between octaves, the gradient and the step
(conditioning, ``x + lr * g / mean|g|``, blur, clamp, mask), the last octave's masked-out pixels, and
the objective at the end. ``DenseRule`` is the article's step on the whole image; ``TiledRule`` computes
the gradient tile by tile (``tiles.py``) and runs the rest strip by strip and in place (``strips.py``),
so that memory follows the tile size. With one tile covering the image they agree to rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

from . import tiles
from .filters import Size, blur_padded, blur_radius, gaussian_blur, resize
from .conditioning import color_gradient, condition_gradient, lapnorm_
from .strips import add_source, is_narrow, restore_outside, source_at, strip_rows, strips

if TYPE_CHECKING:
    from .transforms import Warp


class UpdateRule(Protocol):
    """One layout of the octave loop's work (see the module docstring)."""

    def start(self, image: torch.Tensor, size: Size) -> tuple[torch.Tensor, torch.Tensor]:
        """(the source as this layout keeps it, the first octave's image at ``size``)."""

    def begin_octave(self, x: torch.Tensor, base: torch.Tensor | None, source: torch.Tensor, size: Size,
                     first: bool, last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(this octave's working image, what the next carry measures the detail against)."""

    def step(self, x: torch.Tensor, shift: tuple[int, int], warp: Warp | None, generator: torch.Generator,
             lr: float, sigma: float, mask: torch.Tensor | None, keep_before: bool):
        """One step: (the image the gradient was taken at, the updated image, objective value, activations)."""

    def finish(self, x: torch.Tensor, mask: torch.Tensor, source: torch.Tensor, size: Size) -> torch.Tensor:
        """The last octave's image with every pixel outside ``mask`` the source's own."""

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The objective (and activations) at ``x``."""


def update_rule(dreamer, settings) -> UpdateRule:
    """The rule for a ``Dreamer`` and its ``DreamSettings``: tiled when ``settings.tile`` is set, dense otherwise."""
    return TiledRule(dreamer, settings) if settings.tile else DenseRule(dreamer, settings)


class DenseRule:
    """The whole image at once: the source as float on the device, a new image per step."""

    def __init__(self, dreamer, settings):
        self.dreamer, self.settings = dreamer, settings

    def start(self, image, size):
        if image.dtype == torch.uint8:
            image = image.float().div_(255)
        source = self.dreamer.prepare(image.clamp(0, 1))
        return source, resize(source, size)

    def begin_octave(self, x, base, source, size, first, last):
        if not first:
            if self.settings.carry == "detail":
                detail = resize(x, size) - resize(base, size)
                x = (resize(source, size) + detail).clamp(0, 1)
            else:
                x = resize(x, size)
        return self.dreamer.prepare(x), x

    def step(self, x, shift, warp, generator, lr, sigma, mask, keep_before):
        s = self.settings
        grad, value, acts = self.dreamer.gradient(x, shift, warp)
        if s.lapnorm > 1 or s.color != "rgb":
            grad = condition_gradient(grad, lapnorm_levels=s.lapnorm, color=s.color)
        before = x
        if s.normalize == "mean-abs":  # x + lr * g / mean|g| per image, fused, without a host sync
            x = torch.addcmul(x, grad, lr / (grad.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8))
        else:
            x = x + lr * grad
        x = gaussian_blur(x, sigma).clamp(0, 1)
        if mask is not None:  # the update (and blur) only where the mask says, scaled by it
            x = torch.lerp(before, x, mask)
        return before, x, value, acts

    def finish(self, x, mask, source, size):
        return torch.where(mask > 0, x, resize(source, size))  # outside the mask: exactly the source (no octave bleed)

    def evaluate(self, x):
        return self.dreamer.evaluate(x)


class TiledRule:
    """Memory-lean: the source as given (uint8 stays uint8), ``x`` updated in place, the gradient tile by tile."""

    def __init__(self, dreamer, settings):
        self.dreamer, self.settings = dreamer, settings

    def start(self, image, size):
        d = self.dreamer
        source = image if image.device == d.device else image.to(d.device)
        return source, source_at(source, size, d.device, d.path.channels_last)

    def begin_octave(self, x, base, source, size, first, last):
        detail = self.settings.carry == "detail"
        if not first and detail:  # the detail in place of the image, then the source added to it
            x, base = x.sub_(base), None
            x = add_source(F.interpolate(x, size=size[::-1], mode="bilinear", align_corners=False,
                                         antialias=size[1] < x.shape[-2] or size[0] < x.shape[-1]), source)
        elif not first:
            x = resize(x, size)
        # updated in place: the octave's start is kept (as a copy) only where the carry needs it
        base = x.clone() if detail and not last else None
        return self.dreamer.prepare(x), base

    def step(self, x, shift, warp, generator, lr, sigma, mask, keep_before):
        s = self.settings
        grad, value, acts = tiles.tiled_gradient(self.dreamer, x, shift, s.tile, s.tile_overlap, generator, warp,
                                                 tiles.grad_dtype(x.device))
        before = x.clone() if keep_before else x
        lean_update(x, grad, lr, sigma, s, mask)  # grad is freed on return, before the next step's is accumulated
        return before, x, value, acts

    def finish(self, x, mask, source, size):
        restore_outside(x, mask, source)
        return x

    def evaluate(self, x):
        return tiles.tiled_evaluate(self.dreamer, x, self.settings.tile, self.settings.tile_overlap)


def lean_update(x: torch.Tensor, grad: torch.Tensor, lr: float, sigma: float, settings, mask=None) -> None:
    """One step of the octave loop on ``x`` in place: conditioning, x + lr * g / mean|g|, blur, clamp, mask.

    What ``DenseRule.step`` does, strip by strip: ``grad`` is conditioned in place (lapnorm_, the colour
    space per strip), the per-image mean |g| is summed over the strips, then each strip of the update is
    blurred with ``ceil(3 sigma)`` rows of its neighbours (the image's own top and bottom reflected, as
    ``gaussian_blur`` does) and written back one strip late, once the next strip has read its halo rows.
    A bfloat16 ``grad`` (``tiles.grad_dtype``) is read into float32 strips: the colour space, the sum of |g| and
    the update are computed in float32.
    """
    n, _, h, w = x.shape
    rows = strip_rows(x.shape)
    if settings.lapnorm > 1:
        lapnorm_(grad, settings.lapnorm)
    total = torch.zeros((n, 1, 1, 1), device=x.device) if settings.normalize == "mean-abs" else None
    narrow = is_narrow(grad)
    if settings.color != "rgb" or total is not None:
        for a, b in strips(h, rows):
            g = grad[..., a:b, :]
            c = g.float() if narrow else g
            if settings.color != "rgb":
                c = color_gradient(c, settings.color)
                g.copy_(c)
            if total is not None:
                total += c.abs().sum(dim=(1, 2, 3), keepdim=True)
    step = lr / (total / (grad[0].numel()) + 1e-8) if total is not None else lr
    r = blur_radius(h, w, sigma) if sigma > 0 else 0
    rows = strip_rows(x.shape, r)
    pending = None
    for a, b in strips(h, rows):
        lo, hi = max(0, a - r), min(h, b + r)
        gs = grad[..., lo:hi, :].float() if narrow else grad[..., lo:hi, :]
        u = torch.addcmul(x[..., lo:hi, :], gs, step) if total is not None else x[..., lo:hi, :] + lr * gs
        if pending is not None:  # the previous strip's result, now that its rows are no longer read
            x[..., pending[0] : pending[1], :] = pending[2]
        if r:
            u = blur_padded(u, sigma, r, r - (a - lo), r - (hi - b))
        u = u.clamp_(0, 1)
        if mask is not None:
            u = torch.lerp(x[..., a:b, :], u, mask[..., a:b, :])
        pending = (a, b, u)
    x[..., pending[0] : pending[1], :] = pending[2]
