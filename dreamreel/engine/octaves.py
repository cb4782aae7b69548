"""The octave dream engine: gradient ascent on an image toward an objective, octave by octave.

Per step (the article's update, with its options):
    a <- clamp(a + lr * g / norm(g), 0, 1);  every k steps: a <- GaussianBlur_sigma(a)
with lr and sigma interpolated linearly from start to end over each octave's steps
(``start*(n-i)/n + end*i/n``, as in the article's code). Between octaves the image grows.
Nothing here knows about files or video; recorders see each step through a callback.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .objectives import Objective

Size = tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class Octave:
    size: Size
    steps: int
    lr: tuple[float, float]
    sigma: tuple[float, float] = (0.0, 0.0)

    def lr_at(self, i: int) -> float:
        return _interp(self.lr, i, self.steps)

    def sigma_at(self, i: int) -> float:
        return _interp(self.sigma, i, self.steps)


def _interp(pair: tuple[float, float], i: int, n: int) -> float:
    start, end = pair
    return start * (n - i) / n + end * i / n


@dataclass(frozen=True)
class DreamSettings:
    octaves: tuple[Octave, ...]
    smooth_every: int = 1  # blur every k steps (k=1 feature visualisation, 5-10 directed dream)
    jitter: int = 0  # random roll of up to this many pixels per step
    normalize: str = "mean-abs"  # "none": the article's raw step; "mean-abs": g / mean|g|
    carry: str = "detail"  # between octaves: "image" (the article's resize) or "detail" (add the dreamt detail to the resized source)


@dataclass
class Step:
    """What a recorder sees after each optimisation step. Tensors are detached and stay on the device."""

    octave: int
    n_octaves: int
    step: int  # within the octave, 0-based
    steps: int
    global_step: int  # across octaves, 0-based
    total_steps: int
    input_image: torch.Tensor  # (1,3,H,W) in [0,1]: the image the activations were computed on
    image: torch.Tensor  # (1,3,H,W) in [0,1]: after this step's update
    activations: dict[str, torch.Tensor]  # the objective's layers (and logits for a target)
    objective: torch.Tensor  # scalar, at input_image


@dataclass
class OctaveReport:
    size: Size
    steps: int
    objective_start: float
    objective_end: float


@dataclass
class DreamResult:
    image: torch.Tensor  # (1,3,H,W) in [0,1], on the device
    octaves: list[OctaveReport] = field(default_factory=list)
    target_probability: tuple[float, float] | None = None  # first target's softmax p, before and after


def device_problem(name: str) -> str | None:
    """Why ``--device name`` cannot be used here (in a few words), or None; cheap: no device is opened."""
    kind, _, index = name.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA GPU is available here"
        if index and int(index) >= torch.cuda.device_count():
            return f"this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
    elif kind == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            return "MPS (Apple GPU) is not available here"
    elif kind not in ("auto", "cpu"):
        return "use auto, cpu, cuda, cuda:N or mps"
    return None


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resize(image: torch.Tensor, size: Size) -> torch.Tensor:
    w, h = size
    if image.shape[-2:] == (h, w):
        return image
    shrinking = h < image.shape[-2] or w < image.shape[-1]
    return F.interpolate(image, size=(h, w), mode="bilinear", align_corners=False, antialias=shrinking).clamp(0, 1)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, reflect-padded; the article's smoothness prior N.

    Small kernels (radius <= 3, the usual dream sigmas) are weighted sums of shifted views, about
    2.5x faster on the CPU than a convolution; larger ones fold channels into the batch and convolve.
    """
    if sigma <= 0:
        return image
    h, w = image.shape[-2:]
    radius = max(1, min(int(math.ceil(3 * sigma)), h - 1, w - 1))
    # Built on the device: a host-to-device copy from pageable memory could stall the step loop.
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    if radius <= 3:
        padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
        rows = padded[..., :, 0:w] * k[0]
        for i in range(1, 2 * radius + 1):
            rows = rows + padded[..., :, i : i + w] * k[i]
        out = rows[..., 0:h, :] * k[0]
        for i in range(1, 2 * radius + 1):
            out = out + rows[..., i : i + h, :] * k[i]
        return out
    out = F.pad(image.reshape(-1, 1, h, w), (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1))
    out = F.conv2d(out, k.view(1, 1, -1, 1))
    return out.reshape(image.shape)


def noise_image(size: Size, generator: torch.Generator | None = None) -> torch.Tensor:
    """The article's starting noise: uniform(0,1)/10 + 0.5."""
    w, h = size
    return torch.rand(1, 3, h, w, generator=generator) / 10 + 0.5


def octave_sizes(final: Size, octaves: int | Sequence[int], scale: float = 1.4) -> list[Size]:
    """N geometric octaves ending at ``final``, or explicit longer-side sizes with ``final``'s aspect."""
    w, h = final
    if isinstance(octaves, int):
        longs = [max(w, h) / scale ** (octaves - 1 - i) for i in range(octaves)]
    else:
        longs = list(octaves)
    sizes = []
    for long in longs:
        f = long / max(w, h)
        sizes.append((max(1, round(w * f)), max(1, round(h * f))))
    return sizes


class Dreamer:
    """Runs dreams of one model and objective; holds what is worth preparing once (device, precision)."""

    def __init__(self, model: torch.nn.Module, objective: Objective, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else next(model.buffers()).device
        self.model = model.to(self.device)
        self.objective = objective
        self.layers = sorted(objective.layers)
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._targets = objective.targets()

    def _autocast(self):
        if self.cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x

    def evaluate(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Objective value and activations at ``image``, without gradients."""
        with torch.no_grad(), self._autocast():
            acts = self.model(self._prepare(image), self.layers)
            return self.objective(acts).float(), acts

    def gradient(self, image: torch.Tensor, shift: tuple[int, int] = (0, 0)):
        """Gradient of the objective w.r.t. ``image`` (jittered by ``shift``), its value and the activations."""
        x = self._prepare(image.detach()).requires_grad_(True)
        xin = torch.roll(x, shift, dims=(2, 3)) if shift != (0, 0) else x
        with self._autocast():
            acts = self.model(xin, self.layers)
            value = self.objective(acts)
        (grad,) = torch.autograd.grad(value, x)
        return grad, value.detach().float(), {k: v.detach() for k, v in acts.items()}

    def target_probability(self, acts: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self._targets:
            return None
        return acts["logits"].float().softmax(1)[0, self._targets[0].index]

    def dream(
        self,
        image: torch.Tensor,
        settings: DreamSettings,
        *,
        callback: Callable[[Step], None] | None = None,
        generator: torch.Generator | None = None,
        progress: Callable[[int], None] | None = None,
        evaluate_end: bool = True,
    ) -> DreamResult:
        """Dream ``image`` (1,3,H,W in [0,1]) through ``settings.octaves``; returns the last octave's image.

        ``evaluate_end`` measures the objective after each octave's last update (one forward pass);
        without it, objective_end is the last step's value (zoom and video frames skip the extra pass).
        """
        source = self._prepare(image.clamp(0, 1))
        x = resize(source, settings.octaves[0].size)
        total = sum(o.steps for o in settings.octaves)
        n_oct = len(settings.octaves)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        records: list[tuple[Size, int, torch.Tensor, torch.Tensor]] = []
        prob_start = prob_end = None
        done = 0
        base = x  # each octave's starting image: the dreamt detail is measured against it
        for o_index, octave in enumerate(settings.octaves):
            if o_index > 0:
                if settings.carry == "detail":
                    detail = resize(x, octave.size) - resize(base, octave.size)
                    x = (resize(source, octave.size) + detail).clamp(0, 1)
                else:
                    x = resize(x, octave.size)
            base = x
            x = self._prepare(x)
            values = []
            for i in range(octave.steps):
                shift = (0, 0)
                if settings.jitter > 0:
                    dy, dx = torch.randint(-settings.jitter, settings.jitter + 1, (2,), generator=g).tolist()
                    shift = (dy, dx)
                grad, value, acts = self.gradient(x, shift)
                before = x
                if settings.normalize == "mean-abs":  # x + lr * g / mean|g|, fused, without a host sync
                    x = torch.addcmul(x, grad, octave.lr_at(i) / (grad.abs().mean() + 1e-8))
                else:
                    x = x + octave.lr_at(i) * grad
                if octave.sigma != (0.0, 0.0) and (i + 1) % settings.smooth_every == 0:
                    x = gaussian_blur(x, octave.sigma_at(i))
                x = x.clamp(0, 1)
                values.append(value)
                if prob_start is None and self._targets:
                    prob_start = self.target_probability(acts)
                if callback is not None:
                    callback(Step(o_index, n_oct, i, octave.steps, done, total, before, x, acts, value))
                done += 1
                if progress is not None:
                    progress(1)
            if evaluate_end or not values:
                end_value, end_acts = self.evaluate(x)
            else:
                end_value, end_acts = values[-1], acts
            if o_index == n_oct - 1 and self._targets:
                prob_end = self.target_probability(end_acts)
            start_value = values[0] if values else end_value
            records.append((octave.size, octave.steps, start_value, end_value))
        # One host sync for all the numbers, after the loop.
        reports = [OctaveReport(size, n, float(s), float(e)) for size, n, s, e in records]
        tp = (float(prob_start), float(prob_end)) if prob_start is not None and prob_end is not None else None
        return DreamResult(image=x.detach(), octaves=reports, target_probability=tp)
