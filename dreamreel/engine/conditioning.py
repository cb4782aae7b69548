"""Gradient conditioning and colour statistics: against high-frequency fringes, colour drift and wash-out.

- ``lapnorm``: the TensorFlow deep-dream tutorial's Laplacian-pyramid gradient normalisation. The gradient is
  split into frequency bands, each band divided by its RMS, and the bands summed again: the raw gradient of a
  convnet is dominated by its finest band (one-pixel fringes, the stride grid), normalised each band counts
  alike, so coarse structure grows as fast as fine texture.
- ``color_gradient``: the step in a decorrelated colour space (lucid's ``color_correlation_svd_sqrt``). Taking
  the step in decorrelated coordinates ``y`` with ``x = C y`` makes the image step ``C C^T g``: the luminance
  direction keeps its full weight and the chroma directions, where the red/green/blue fringes live, are
  damped. ``luminance`` keeps only the grey part of the step: the dream changes no colour at all.
- ``color_stats`` / ``match_color``: per-channel mean and std (in RGB or the decorrelated space) of a
  reference, imposed on another image. A zoom matches every frame to its first so that contrast and colour do
  not drift over hundreds of frames.

Everything works on (N,3,H,W) tensors on their device, without host syncs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .strips import down, is_narrow, rms, strip_rows, strips, up_rows
from ..options import COLOR_MODES  # the option table owns the choices

#: lucid's square root of ImageNet's colour correlation matrix (columns: luminance-like, then two chroma axes).
COLOR_CORRELATION_SVD_SQRT = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))


#: The colour matrices per (which, device, dtype): copied to a device once, not at every step (a blocking
#: copy from pageable host memory is a host synchronisation on CUDA).
_ON_DEVICE: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}


def _on_device(which: str, host: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    key = (which, like.device, like.dtype)
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = host.to(like.device, like.dtype)
    return _ON_DEVICE[key]


def _color_matrix(like: torch.Tensor) -> torch.Tensor:
    return _on_device("svd_sqrt", torch.tensor(COLOR_CORRELATION_SVD_SQRT, dtype=torch.float32), like)


def _max_norm_matrix() -> torch.Tensor:
    c = torch.tensor(COLOR_CORRELATION_SVD_SQRT, dtype=torch.float64)
    return c / torch.linalg.norm(c, 2)  # largest singular value 1: the luminance direction keeps its size


_CCT = None


def _cct(like: torch.Tensor) -> torch.Tensor:
    global _CCT
    if _CCT is None:
        c = _max_norm_matrix()
        _CCT = (c @ c.T).float()
    return _on_device("cct", _CCT, like)


def _mix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``m @ pixel`` for every pixel of (N,3,H,W)."""
    return torch.einsum("ij,njhw->nihw", m, x)


def color_gradient(grad: torch.Tensor, mode: str) -> torch.Tensor:
    """The gradient as a step in ``mode``'s colour space: rgb (unchanged), decorrelated, or luminance."""
    if mode == "rgb":
        return grad
    if mode == "decorrelated":
        return _mix(grad, _cct(grad))
    if mode == "luminance":
        return grad.mean(dim=1, keepdim=True).expand_as(grad)
    raise ValueError(f"unknown colour mode {mode!r}; choose one of {', '.join(COLOR_MODES)}")


def _down(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(max(1, (h + 1) // 2), max(1, (w + 1) // 2)), mode="bilinear",
                         align_corners=False, antialias=True)


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def laplacian_split(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Bands finest first, the last one the coarse residual; ``sum`` of ``laplacian_merge`` gives ``x`` back."""
    bands = []
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 4:
            break
        low = _down(x)
        bands.append(x - _up(low, x.shape[-2:]))
        x = low
    bands.append(x)
    return bands


def laplacian_merge(bands: list[torch.Tensor]) -> torch.Tensor:
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = _up(x, band.shape[-2:]) + band
    return x


def lapnorm(grad: torch.Tensor, levels: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Laplacian-pyramid normalised gradient: every band scaled to unit RMS, then merged (``levels`` <= 1: as is)."""
    if levels <= 1:
        return grad
    bands = laplacian_split(grad, levels)
    return laplacian_merge([b / (b.pow(2).mean().sqrt() + eps) for b in bands])


def lapnorm_(t: torch.Tensor, levels: int, eps: float = 1e-8) -> torch.Tensor:
    """``lapnorm``, in place: computed into ``t`` itself (``levels`` > 1) strip by strip, with only a quarter-size copy.

    lapnorm(t) = band0 / rms(band0) + up(L'(down t)), band0 = t - up(down t), where L' is the same normalised
    merge one level coarser (the coarsest band, the residual, normalised too); so ``t`` becomes band0 in place,
    is scaled, and gets the upsampled coarser levels added, strip by strip. Equal up to rounding.
    A bfloat16 ``t`` (the tiled gradient buffer on the CPU) is computed in float32 strips and rounded twice (band0,
    then the result); its coarser levels are float32 (``down``).
    """
    h, w = t.shape[-2:]
    rows = strip_rows(t.shape)
    if levels <= 1 or min(h, w) < 4:  # the residual band: normalised alone
        if not is_narrow(t):
            return t.div_(rms(t) + eps)
        n = rms(t) + eps
        for a, b in strips(h, rows):
            t[..., a:b, :].copy_(t[..., a:b, :].float().div_(n))
        return t
    low = down(t)
    for a, b in strips(h, rows):
        t[..., a:b, :].sub_(up_rows(low, a, b, (w, h)))  # computed in float32 (type promotion), rounded once
    n = rms(t) + eps
    if not is_narrow(t):
        t.div_(n)
    lapnorm_(low, levels - 1, eps)
    for a, b in strips(h, rows):
        if is_narrow(t):
            t[..., a:b, :].copy_(t[..., a:b, :].float().div_(n).add_(up_rows(low, a, b, (w, h))))
        else:
            t[..., a:b, :].add_(up_rows(low, a, b, (w, h)))
    return t


def condition_gradient(grad: torch.Tensor, *, lapnorm_levels: int = 0, color: str = "rgb") -> torch.Tensor:
    """The engine's conditioning, in order: Laplacian-pyramid normalisation, then the colour space of the step."""
    if lapnorm_levels > 1:
        grad = lapnorm(grad, lapnorm_levels)
    return color_gradient(grad, color)


# ---------------------------------------------------------------- colour statistics


def _to_space(x: torch.Tensor, space: str) -> torch.Tensor:
    if space == "rgb":
        return x
    if space == "decorrelated":
        return _mix(x, torch.linalg.inv(_color_matrix(x).double()).to(x.dtype))
    raise ValueError(f"unknown colour space {space!r}; choose rgb or decorrelated")


def _from_space(y: torch.Tensor, space: str) -> torch.Tensor:
    return y if space == "rgb" else _mix(y, _color_matrix(y))


def color_stats(image: torch.Tensor, space: str = "rgb") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std), each (3,), of (1,3,H,W) ``image`` in ``space`` (rgb or decorrelated)."""
    y = _to_space(image.float(), space)
    return y.mean(dim=(0, 2, 3)), y.std(dim=(0, 2, 3))


def match_color(image: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor], space: str = "rgb",
                max_gain: float = 4.0) -> torch.Tensor:
    """``image`` with each channel's mean and std (in ``space``) set to ``reference``'s, clamped to [0, 1].

    ``max_gain`` bounds the std scale (a near-flat channel is not blown up into noise).
    """
    if space == "none":
        return image
    y = _to_space(image.float(), space)
    mean, std = y.mean(dim=(0, 2, 3)), y.std(dim=(0, 2, 3))
    ref_mean, ref_std = (r.to(y.device, y.dtype) for r in reference)
    gain = (ref_std / (std + 1e-6)).clamp(1.0 / max_gain, max_gain)
    y = (y - mean.view(1, -1, 1, 1)) * gain.view(1, -1, 1, 1) + ref_mean.view(1, -1, 1, 1)
    return _from_space(y, space).clamp(0, 1).to(image.dtype)
