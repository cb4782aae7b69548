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
place (``update.TiledRule``, ``strips.py``), in float32. Peak memory at 2K, 4K and 8K: benchmarks/RESULTS.md ("Tiles").

The jitter of a step rolls each tile (as it rolls the whole image untiled). The objective's value is the
sum over tiles (layer and feature terms add up over positions; a target's logit is summed over tiles, and
no whole-image class probability is reported).
"""

from __future__ import annotations


import torch

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
