"""The measurements the article's claims are checked with: frequency content, gradient additivity, layer profiles."""

from __future__ import annotations

import torch

HF_CUTOFF = 0.25  # cycles per pixel (Nyquist is 0.5); white noise keeps 1 - pi/16 = 0.80 of its energy above it


def high_frequency_share(image: torch.Tensor, cutoff: float = HF_CUTOFF) -> float:
    """Share of the (mean-removed, channel-averaged) energy above ``cutoff`` cycles/pixel."""
    y = image.detach().float().cpu()[0].mean(0)
    y = y - y.mean()
    power = torch.fft.fft2(y).abs() ** 2
    fy = torch.fft.fftfreq(y.shape[0])[:, None]
    fx = torch.fft.fftfreq(y.shape[1])[None, :]
    total = float(power.sum())
    if total == 0:
        return 0.0
    return float(power[(fy**2 + fx**2).sqrt() > cutoff].sum()) / total


def gradient_additivity(model: torch.nn.Module, layer: str, channels: int, image: torch.Tensor,
                        chunk: int = 32) -> tuple[float, float]:
    """(max |F * grad(whole layer) - sum of per-feature gradients|, max |F * grad(whole layer)|), in float32.

    Each feature's gradient comes from its own copy of the image in a batch (eval mode keeps
    batch elements independent), so the sum really is a sum of separate gradients.
    """
    from .engine.objectives import Layer

    x = image.detach().clone().requires_grad_(True)
    whole = Layer(layer, channels)(model(x, [layer]))
    (g_layer,) = torch.autograd.grad(whole, x)
    g_layer = g_layer * channels
    g_sum = torch.zeros_like(g_layer)
    for start in range(0, channels, chunk):
        idx = torch.arange(start, min(channels, start + chunk), device=image.device)
        xb = image.detach().expand(len(idx), -1, -1, -1).clone().requires_grad_(True)
        acts = model(xb, [layer])[layer]
        value = acts[torch.arange(len(idx), device=image.device), idx].sum()
        (g,) = torch.autograd.grad(value, xb)
        g_sum += g.sum(0, keepdim=True)
    return float((g_layer - g_sum).abs().max()), float(g_layer.abs().max())


def layer_profile(model: torch.nn.Module, image: torch.Tensor, layer: str) -> torch.Tensor:
    """Per-feature mean activation of ``layer`` on ``image`` (what the layer sees, wherever it is)."""
    device = next(model.buffers()).device
    with torch.no_grad():
        acts = model(image.to(device, torch.float32), [layer])[layer]
    return acts.float().mean(dim=(0, 2, 3)).cpu()


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(1 - torch.nn.functional.cosine_similarity(a, b, dim=0))


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference in 0-255 units."""
    return float((a.float().cpu() - b.float().cpu()).abs().mean() * 255)
