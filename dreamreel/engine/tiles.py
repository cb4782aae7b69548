"""Tiles for huge images: the gradient computed tile by tile, so memory follows the tile size.

Each step lays a grid of ``tile`` x ``tile`` tiles over the image, neighbours overlapping by ``overlap``
pixels, shifted by a random offset (drawn from the dream's generator) so that tile borders fall somewhere
else every step and no seam can form. Each tile's gradient is weighted by a window that is 1 inside and
ramps linearly across the overlaps (1 at the image's own borders); the windows are normalised per axis to
sum to 1 at every pixel, so the tiles' gradients blend into one full-size gradient. The model only ever
sees one tile: its activation memory is that of a ``tile``-sized dream whatever the image size.
What still grows with the image: the image ``x`` (float32), its gradient (bfloat16 on the CPU, float32 on
CUDA: ``grad_dtype``), the source (an 8-bit still's stays uint8, from the CLI too) and strip-sized scratch: the
rest of the step (lapnorm, colour, mean|g|, update, blur, clamp, mask, octave carry) runs strip by strip and in
place (``lean_update`` below), in float32. Peak memory at 2K, 4K and 8K: benchmarks/RESULTS.md ("Tiles").

The jitter of a step rolls each tile (as it rolls the whole image untiled). The objective's value is the
sum over tiles (layer and feature terms add up over positions; a target's logit is summed over tiles, and
no whole-image class probability is reported).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import DreamError

RANDOM_OFFSET = True  # False: the same grid every step (benchmarks/tiles.py measures the seams that leaves)

#: The dtype of a tiled dream's full-size gradient buffer on the CPU. bfloat16 halves the largest buffer after the
#: image itself (an 8K (1,3,4320,7680) gradient: 380 MiB float32, 190 MiB bfloat16); every sum, tile blend and
#: conditioning step is computed in float32 and rounded once per write (relative error <= 2**-9 per element,
#: far below what a step of lr * g / mean|g| can show). On CUDA the buffer stays float32: there the tiled
#: step's device memory is the tile's activations plus a few image-sized buffers, 8K fits any card that runs
#: the model, and the float32 dream is kept exactly as it was (benchmarks/tiles.py measures both buffers).
CPU_GRAD_DTYPE = torch.bfloat16


def grad_dtype(device) -> torch.dtype:
    """The dtype of the tiled gradient buffer on ``device`` (``CPU_GRAD_DTYPE`` on the CPU, float32 elsewhere)."""
    return CPU_GRAD_DTYPE if torch.device(device).type == "cpu" else torch.float32


def check_tile(tile: int, overlap: int, spec) -> None:
    """One-line DreamErrors for a tile the model cannot use or an overlap that leaves no tile interior."""
    if tile < spec.min_size:
        raise DreamError(f"--tile {tile} is smaller than {spec.name}'s minimum of {spec.min_size} px",
                         f"use --tile {max(spec.min_size, 256)} or more (512 is a good size)")
    if overlap < 0 or 2 * overlap > tile:
        raise DreamError(f"--tile-overlap {overlap} is out of range for --tile {tile}", f"use 0-{tile // 2}")


def starts(length: int, tile: int, overlap: int, offset: int) -> list[int]:
    """Tile starts along one axis: a grid of step tile-overlap shifted by -offset, clamped inside [0, length-tile]."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    out, s = [], -offset
    while True:
        c = min(max(s, 0), length - tile)
        if not out or c != out[-1]:
            out.append(c)
        if c >= length - tile:
            return out
        s += step


def windows(length: int, tile: int, overlap: int, offset: int, device=None) -> list[tuple[int, int, torch.Tensor]]:
    """Per tile along one axis: (start, size, weight) with the weights summing to 1 at every pixel."""
    ss = starts(length, tile, overlap, offset)
    size = min(tile, length)
    pos = torch.arange(size, dtype=torch.float32, device=device)
    ramp = max(1, overlap)
    ws = []
    for i, s in enumerate(ss):
        w = torch.ones(size, device=device)
        if i > 0:  # ramp up over the overlap with the previous tile
            w = torch.minimum(w, (pos + 0.5) / ramp)
        if i < len(ss) - 1:  # ramp down over the overlap with the next tile
            w = torch.minimum(w, (size - pos - 0.5) / ramp)
        ws.append(w)
    total = torch.zeros(length, device=device)
    for s, w in zip(ss, ws):
        total[s : s + size] += w
    return [(s, size, w / total[s : s + size]) for s, w in zip(ss, ws)]


def tiled_gradient(dreamer, x: torch.Tensor, shift: tuple[int, int], tile: int, overlap: int,
                   generator: torch.Generator | None = None, warp=None, dtype: torch.dtype | None = None):
    """The full-size gradient of ``dreamer``'s objective at ``x`` (1,3,H,W), tile by tile; (grad, value, acts).

    ``acts`` is empty (no whole-image activations exist); ``value`` is the sum of the tiles' values.
    ``warp`` (transformation robustness) is applied to each tile's view. ``dtype``: the gradient buffer's
    (default ``x``'s; the dream passes ``grad_dtype``): a narrower one is accumulated in float32 tile by tile
    and rounded once per tile written. A single tile covering the image returns ``dreamer.gradient``'s as is.
    """
    _, _, h, w = x.shape
    if h <= tile and w <= tile:
        return dreamer.gradient(x, shift, warp)
    step = max(1, tile - overlap)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    oy, ox = torch.randint(0, step, (2,), generator=g).tolist() if RANDOM_OFFSET else (0, 0)
    rows = windows(h, tile, overlap, oy, x.device)
    cols = windows(w, tile, overlap, ox, x.device)
    grad = torch.zeros_like(x, dtype=dtype or x.dtype)
    narrow = grad.dtype in (torch.bfloat16, torch.float16)
    value = torch.zeros((), device=x.device)
    for y0, th, wy in rows:
        for x0, tw, wx in cols:
            part = x[..., y0 : y0 + th, x0 : x0 + tw]
            sy, sx = min(abs(shift[0]), th // 2), min(abs(shift[1]), tw // 2)  # a roll within the tile
            tshift = (sy if shift[0] >= 0 else -sy, sx if shift[1] >= 0 else -sx)
            gt, vt, _ = dreamer.gradient(part, tshift, warp)
            dst = grad[..., y0 : y0 + th, x0 : x0 + tw]
            if narrow:  # the blend in float32, rounded once: dst + gt * window
                dst.copy_(torch.addcmul(dst.float(), gt, wy[:, None] * wx[None, :]))
            else:
                dst.addcmul_(gt, wy[:, None] * wx[None, :])
            value = value + vt
    if x.device.type == "cpu":
        release_heap()
    return grad, value, {}


def blur_radius(h: int, w: int, sigma: float) -> int:
    return max(1, min(int(math.ceil(3 * sigma)), h - 1, w - 1))


def blur_padded(image: torch.Tensor, sigma: float, radius: int, top: int, bottom: int) -> torch.Tensor:
    """``gaussian_blur``'s work on rows that bring ``radius - top`` (``radius - bottom``) real rows above (below)
    the ones blurred: ``top``/``bottom`` rows are reflect-padded there (the image's own edge); the output has
    the rows between. With ``top = bottom = radius`` it is ``gaussian_blur`` (tiles.lean_update blurs strips)."""
    rh = image.shape[-2] + top + bottom
    h, w = rh - 2 * radius, image.shape[-1]
    if radius <= 3:
        # The weights are Python floats (no device tensor, no copy to the device): each tap is one fused
        # in-place multiply-add, 2.8x faster than a multiply and an add per tap (256 px, channels-last).
        taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
        total = sum(taps)
        taps = [t / total for t in taps]
        padded = F.pad(image, (radius, radius, top, bottom), mode="reflect")
        rows = padded[..., :, 0:w] * taps[0]
        for i in range(1, 2 * radius + 1):
            rows.add_(padded[..., :, i : i + w], alpha=taps[i])
        out = rows[..., 0:h, :] * taps[0]
        for i in range(1, 2 * radius + 1):
            out.add_(rows[..., i : i + h, :], alpha=taps[i])
        return out
    # Built on the device: a host-to-device copy from pageable memory could stall the step loop.
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    out = F.pad(image.reshape(-1, 1, image.shape[-2], w), (radius, radius, top, bottom), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1))
    out = F.conv2d(out, k.view(1, 1, -1, 1))
    return out.reshape(*image.shape[:-2], h, w)


_LIBC = None


def release_heap() -> None:
    """Give the tiles' freed scratch back to the OS (glibc ``malloc_trim``; elsewhere nothing).

    The model's per-tile activations are freed into malloc's heap, which keeps them resident; the strip
    scratch of the update that follows has other sizes and would add to them; the trim after the gradient makes
    the gradient, not the update, the peak (benchmarks/RESULTS.md, "Tiles").
    """
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def tiled_evaluate(dreamer, x: torch.Tensor, tile: int, overlap: int):
    """The objective at ``x`` summed over a tile grid without overlap; (value, {})."""
    _, _, h, w = x.shape
    if h <= tile and w <= tile:
        return dreamer.evaluate(x)
    value = torch.zeros((), device=x.device)
    for y0 in starts(h, tile, 0, 0):
        for x0 in starts(w, tile, 0, 0):
            v, _ = dreamer.evaluate(x[..., y0 : y0 + tile, x0 : x0 + tile])
            value = value + v
    return value, {}


# ---------------------------------------------------------------- the memory-lean tiled step
#
# A tiled dream's step works on the image strip by strip, so that besides the image ``x`` and its gradient
# only strip-sized scratch exists (benchmarks/tiles.py measures it). The strips are bands of whole rows: every
# operation of the step is per pixel, or (lapnorm's upsampling, the Gaussian blur) needs a few rows around it.

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
                      memory_format=torch.channels_last if _channels_last(t) else torch.contiguous_format)
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
        x.add_(source_at(source, (w, h), x.device, _channels_last(x)))
    else:
        for a, b in strips(h, strip_rows(x.shape)):
            x[..., a:b, :].add_(float_rows(source, a, b, x.device))
    return x.clamp_(0, 1)


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _narrow(t: torch.Tensor) -> bool:
    return t.dtype in (torch.bfloat16, torch.float16)


def _rms(t: torch.Tensor) -> torch.Tensor:
    """sqrt(mean(t**2)) as a float32 0-dim tensor; a bfloat16 ``t``'s squares summed in float32 strip by strip."""
    if not _narrow(t):
        return torch.linalg.vector_norm(t) / math.sqrt(t.numel())
    total = torch.zeros((), device=t.device)
    for a, b in strips(t.shape[-2], strip_rows(t.shape)):
        total += t[..., a:b, :].float().square().sum()
    return total.sqrt() / math.sqrt(t.numel())


def lapnorm_(t: torch.Tensor, levels: int, eps: float = 1e-8) -> torch.Tensor:
    """``conditioning.lapnorm(t, levels)`` computed into ``t`` itself (``levels`` > 1), with only a quarter-size copy.

    lapnorm(t) = band0 / rms(band0) + up(L'(down t)), band0 = t - up(down t), where L' is the same normalised
    merge one level coarser (the coarsest band, the residual, normalised too); so ``t`` becomes band0 in place,
    is scaled, and gets the upsampled coarser levels added, strip by strip. Equal up to rounding.
    A bfloat16 ``t`` (the tiled gradient buffer on the CPU) is computed in float32 strips and rounded twice (band0,
    then the result); its coarser levels are float32 (``down``).
    """
    h, w = t.shape[-2:]
    rows = strip_rows(t.shape)
    if levels <= 1 or min(h, w) < 4:  # the residual band: normalised alone
        if not _narrow(t):
            return t.div_(_rms(t) + eps)
        n = _rms(t) + eps
        for a, b in strips(h, rows):
            t[..., a:b, :].copy_(t[..., a:b, :].float().div_(n))
        return t
    low = down(t)
    for a, b in strips(h, rows):
        t[..., a:b, :].sub_(up_rows(low, a, b, (w, h)))  # computed in float32 (type promotion), rounded once
    n = _rms(t) + eps
    if not _narrow(t):
        t.div_(n)
    lapnorm_(low, levels - 1, eps)
    for a, b in strips(h, rows):
        if _narrow(t):
            t[..., a:b, :].copy_(t[..., a:b, :].float().div_(n).add_(up_rows(low, a, b, (w, h))))
        else:
            t[..., a:b, :].add_(up_rows(low, a, b, (w, h)))
    return t


def lean_update(x: torch.Tensor, grad: torch.Tensor, lr: float, sigma: float, settings, mask=None) -> None:
    """One step of the octave loop on ``x`` in place: conditioning, x + lr * g / mean|g|, blur, clamp, mask.

    What ``Dreamer.dream`` does untiled, strip by strip: ``grad`` is conditioned in place (lapnorm_, the colour
    space per strip), the per-image mean |g| is summed over the strips, then each strip of the update is
    blurred with ``ceil(3 sigma)`` rows of its neighbours (the image's own top and bottom reflected, as
    ``gaussian_blur`` does) and written back one strip late, once the next strip has read its halo rows.
    A bfloat16 ``grad`` (``grad_dtype``) is read into float32 strips: the colour space, the sum of |g| and
    the update are computed in float32.
    """
    from .conditioning import color_gradient

    n, _, h, w = x.shape
    rows = strip_rows(x.shape)
    if settings.lapnorm > 1:
        lapnorm_(grad, settings.lapnorm)
    total = torch.zeros((n, 1, 1, 1), device=x.device) if settings.normalize == "mean-abs" else None
    narrow = _narrow(grad)
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


def restore_outside(x: torch.Tensor, mask: torch.Tensor, source: torch.Tensor) -> None:
    """``x = where(mask > 0, x, source at x's size)`` in place (the still's last octave: no bleed outside the mask)."""
    h, w = x.shape[-2:]
    if source.shape[-2:] != (h, w):
        src = source_at(source, (w, h), x.device, _channels_last(x))
        torch.where(mask > 0, x, src, out=x)
        return
    for a, b in strips(h, strip_rows(x.shape)):
        part = x[..., a:b, :]
        part.copy_(torch.where(mask[..., a:b, :] > 0, part, float_rows(source, a, b, x.device)))
