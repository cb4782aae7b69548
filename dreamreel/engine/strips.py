"""Whole-image operations done band by band of rows, so that a huge image needs only strip-sized scratch.

A tiled dream's step works on the image strip by strip: besides the image ``x`` and its gradient only
strip-sized scratch exists (benchmarks/tiles.py measures it). Every operation of the step is per pixel,
or (lapnorm's upsampling, the Gaussian blur) needs a few rows around it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


STRIP_ELEMENTS = 1 << 18  # elements per channel of one strip's scratch (1 MiB float32): 34 rows at 8K


def strip_rows(shape, halo: int = 0) -> int:
    n, c, _, w = shape
    return max(2 * halo + 1, 16, STRIP_ELEMENTS // max(1, n * w))


def strips(h: int, rows: int):
    for a in range(0, h, rows):
        yield a, min(h, a + rows)


def float_rows(source: torch.Tensor, a: int, b: int, device) -> torch.Tensor:
    """Rows [a, b) of a source (uint8, or float) as float32 in [0, 1] on ``device``; never a view of ``source``."""
    s = source[..., a:b, :].to(device, non_blocking=True)
    if s.dtype == torch.uint8:
        return s.float().div_(255)  # bit-identical to io.images' float32(u8) / 255
    return s.float().clamp(0, 1)


def up_rows(low: torch.Tensor, a: int, b: int, size: tuple[int, int]) -> torch.Tensor:
    """Rows [a, b) of ``F.interpolate(low, (h, w), bilinear, align_corners=False)`` from the rows of ``low`` they need.

    Separable: the width is interpolated on those rows (the height's scale is 1 there: exact), then each output
    row is the lerp of two of them, with PyTorch's source-index rule; equal to the whole-image call up to rounding.
    Indices and weights are made on the device (no host sync).
    """
    w, h = size
    hl = low.shape[-2]
    scale = hl / h
    r0 = max(0, math.floor((a + 0.5) * scale - 0.5) - 1)
    r1 = min(hl, math.floor((b - 0.5) * scale - 0.5) + 3)
    wide = F.interpolate(low[..., r0:r1, :].float(), size=(r1 - r0, w), mode="bilinear", align_corners=False)
    y = torch.arange(a, b, device=low.device, dtype=torch.float32)
    src = ((y + 0.5) * scale - 0.5).clamp_(min=0)
    y0 = src.floor()
    i0 = y0.long().clamp_(max=hl - 1)
    i1 = (i0 + 1).clamp_(max=hl - 1)
    return torch.lerp(wide.index_select(2, i0 - r0), wide.index_select(2, i1 - r0), (src - y0).view(1, 1, -1, 1))


def _to_device(t: torch.Tensor, device) -> torch.Tensor:
    if torch.device(device).type == "cuda":  # a pinned copy does not stall the step loop
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def down(t: torch.Tensor) -> torch.Tensor:
    """``conditioning._down(t)`` (antialiased bilinear halving) strip by strip: the whole-image call allocates
    more than the image itself at 8K (measured: its peak was the tiled still's peak). A bfloat16 ``t`` gives a
    float32 result (computed from float32 strips).

    The width is halved on the input rows of each strip (the height's scale is 1 there: exact); the height
    with PyTorch's antialias weights (triangle filter widened by the scale, normalised), as a few weighted rows.
    """
    h, w = t.shape[-2:]
    hl, wl = max(1, (h + 1) // 2), max(1, (w + 1) // 2)
    scale = h / hl
    support = max(scale, 1.0)
    i = torch.arange(hl, dtype=torch.float64)
    center = scale * (i + 0.5)
    xmin = (center - support + 0.5).floor().clamp(min=0)
    xmax = (center + support + 0.5).floor().clamp(max=h)
    taps = int(math.ceil(2 * support)) + 1
    j = xmin[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    wt = (1 - ((j - center[:, None] + 0.5) / max(scale, 1.0)).abs()).clamp(min=0) * (j < xmax[:, None])
    wt = wt / wt.sum(1, keepdim=True)
    first, last = xmin.long().tolist(), (xmax.long() - 1).tolist()  # host values, from the host tensors
    jd, wd = _to_device(j.long().clamp(max=h - 1), t.device), _to_device(wt.float(), t.device)
    dtype = torch.promote_types(t.dtype, torch.float32)  # a bfloat16 gradient's low band: float32 (a quarter-size)
    out = torch.empty((t.shape[0], t.shape[1], hl, wl), device=t.device, dtype=dtype,
                      memory_format=torch.channels_last if is_channels_last(t) else torch.contiguous_format)
    for a, b in strips(hl, max(1, strip_rows(t.shape) // 2)):  # ~strip_rows input rows per strip
        lo, hi = first[a], last[b - 1] + 1
        wide = F.interpolate(t[..., lo:hi, :].to(dtype), size=(hi - lo, wl), mode="bilinear", align_corners=False,
                             antialias=True)
        acc = None
        for k in range(taps):
            term = wide.index_select(2, (jd[a:b, k] - lo).clamp_(0, hi - lo - 1)) * wd[a:b, k].view(1, 1, -1, 1)
            acc = term if acc is None else acc.add_(term)
        out[..., a:b, :] = acc
    return out


def source_at(source: torch.Tensor, size: tuple[int, int], device, channels_last: bool) -> torch.Tensor:
    """The source as float32 at ``size``: a new tensor on ``device``, channels-last or contiguous.

    At the source's own size it is filled strip by strip; larger (an upscale: bilinear, like ``resize``) from
    ``up_rows``; smaller (antialiased) through one whole float copy, as ``resize`` does.
    """
    w, h = size
    sh, sw = source.shape[-2:]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((source.shape[0], 3, h, w), device=device, dtype=torch.float32, memory_format=fmt)
    if (h, w) == (sh, sw):
        for a, b in strips(h, strip_rows(out.shape)):
            out[..., a:b, :] = float_rows(source, a, b, out.device)
    elif h >= sh and w >= sw:
        for a, b in strips(h, strip_rows(out.shape)):
            out[..., a:b, :] = up_rows(source, a, b, size).div_(255 if source.dtype == torch.uint8 else 1).clamp_(0, 1)
    else:
        full = source_at(source, (sw, sh), device, channels_last)
        out.copy_(F.interpolate(full, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1))
        del full
    return out


def add_source(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``clamp(x + source at x's size, 0, 1)`` in place: the octave carry of the dreamt detail ``x``."""
    h, w = x.shape[-2:]
    if source.shape[-2:] != (h, w):
        x.add_(source_at(source, (w, h), x.device, is_channels_last(x)))
    else:
        for a, b in strips(h, strip_rows(x.shape)):
            x[..., a:b, :].add_(float_rows(source, a, b, x.device))
    return x.clamp_(0, 1)


def is_channels_last(x: torch.Tensor) -> bool:
    """``x`` is stored channels-last (and not also contiguous, as a 1-pixel-wide tensor would be)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def is_narrow(t: torch.Tensor) -> bool:
    """``t`` is a 16-bit float (the tiled gradient buffer on the CPU): computed in float32 strips."""
    return t.dtype in (torch.bfloat16, torch.float16)


def rms(t: torch.Tensor) -> torch.Tensor:
    """sqrt(mean(t**2)) as a float32 0-dim tensor; a bfloat16 ``t``'s squares summed in float32 strip by strip."""
    if not is_narrow(t):
        return torch.linalg.vector_norm(t) / math.sqrt(t.numel())
    total = torch.zeros((), device=t.device)
    for a, b in strips(t.shape[-2], strip_rows(t.shape)):
        total += t[..., a:b, :].float().square().sum()
    return total.sqrt() / math.sqrt(t.numel())


def restore_outside(x: torch.Tensor, mask: torch.Tensor, source: torch.Tensor) -> None:
    """``x = where(mask > 0, x, source at x's size)`` in place (the still's last octave: no bleed outside the mask)."""
    h, w = x.shape[-2:]
    if source.shape[-2:] != (h, w):
        src = source_at(source, (w, h), x.device, is_channels_last(x))
        torch.where(mask > 0, x, src, out=x)
        return
    for a, b in strips(h, strip_rows(x.shape)):
        part = x[..., a:b, :]
        part.copy_(torch.where(mask[..., a:b, :] > 0, part, float_rows(source, a, b, x.device)))
