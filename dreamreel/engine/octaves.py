"""The octave dream engine: gradient ascent on an image toward an objective, octave by octave.

Per step (the article's update, with its options):
    a <- clamp(a + lr * g / norm(g), 0, 1);  every k steps: a <- GaussianBlur_sigma(a)
with lr and sigma interpolated linearly from start to end over each octave's steps
(``start*(n-i)/n + end*i/n``, as in the article's code). Between octaves the image grows.
Nothing here knows about files or video; recorders see each step through a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import compiled, fastpath, tiles
from .conditioning import condition_gradient
from .objectives import Objective
from .tiles import blur_padded, blur_radius
from .transforms import Warp, standard_transforms

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
    scale: float = 0.0  # transformation robustness: random scale in [1-s, 1+s] of each step's view (0: none)
    rotate: float = 0.0  # ... and random rotation in [-d, d] degrees (with scale, jitter becomes a sub-pixel shift)
    lapnorm: int = 0  # Laplacian-pyramid gradient normalisation over this many bands (0/1: off)
    color: str = "rgb"  # the step's colour space: rgb, decorrelated (damps chroma fringes) or luminance (no colour change)
    tile: int = 0  # >0: the gradient is computed tile by tile (tiles.tiled_gradient), memory bounded by the tile
    tile_overlap: int = 0
    mask: object = None  # a render.masks.Mask: dream only where it says (per-step blend; exact outside)

    @property
    def robust(self) -> bool:
        return self.scale > 0 or self.rotate > 0


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
    items: list["DreamResult"] = field(default_factory=list)  # a batch's per-image results (empty for one image)


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
    radius = blur_radius(h, w, sigma)
    return blur_padded(image, sigma, radius, radius, radius)


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

    def __init__(self, model: torch.nn.Module, objective: Objective, device: torch.device | str | None = None,
                 precision: str = "auto", channels_last: bool | None = None, compile: str = "auto",
                 compile_backend: str = "inductor"):
        self.device = torch.device(device) if device is not None else next(model.buffers()).device
        self.model = model.to(self.device)
        self.objective = objective
        self.layers = sorted(objective.layers)
        self.cuda = self.device.type == "cuda"
        # precision and memory format for this device: see fastpath.py (channels-last and
        # bf16 on AMX CPUs measured 3x faster than contiguous fp32 on the CPU too)
        self.path = fastpath.choose(self.device.type, precision, channels_last,
                                    grouped_convs=fastpath.has_grouped_convs(self.model), compile=compile)
        if self.path.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # the step's forward: the model itself, or compiled per octave shape (compiled.py; auto: on CUDA)
        self.forward = compiled.compiled_forward(self.model, compile_backend) if self.path.compiled else self.model
        self._targets = objective.targets()
        for _, term in objective.terms():  # terms that need the model first (guide.Guide: the guide's features)
            if hasattr(term, "prepare"):
                term.prepare(self)

    def _autocast(self):
        return self.path.autocast()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.path.channels_last else x

    def evaluate(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Objective value and activations at ``image``, without gradients."""
        with torch.no_grad(), self._autocast():
            acts = self.forward(self._prepare(image), self.layers)
            return self._value(acts).float(), acts

    def _value(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The objective: a scalar for one image; for a batch, one value per image (shape (B,))."""
        n = next(iter(acts.values())).shape[0]
        if n == 1:
            return self.objective(acts)
        return torch.stack([self.objective({k: v[i : i + 1] for k, v in acts.items()}) for i in range(n)])

    def gradient(self, image: torch.Tensor, shift: tuple[int, int] = (0, 0), warp: Warp | None = None):
        """Gradient of the objective w.r.t. ``image`` (jittered by ``shift``, or seen through ``warp``), its value and the activations."""
        x = self._prepare(image.detach()).requires_grad_(True)
        xin = torch.roll(x, shift, dims=(2, 3)) if shift != (0, 0) else x
        if warp is not None:
            xin = warp.apply(xin)
        with self._autocast():
            acts = self.forward(xin, self.layers)
            value = self._value(acts)
        # a batch's images are independent (eval mode), so the sum's gradient is each image's own gradient
        (grad,) = torch.autograd.grad(value.sum(), x)
        return grad, value.detach().float(), {k: v.detach() for k, v in acts.items()}

    def target_probability(self, acts: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self._targets or "logits" not in acts:  # tiled dreams keep no whole-image logits
            return None
        p = acts["logits"].float().softmax(1)[:, self._targets[0].index]
        return p[0] if p.shape[0] == 1 else p

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

        An octave's ``objective_end`` is the objective at its last step (measured on that step's input,
        so it costs nothing). ``evaluate_end`` measures the final image once more after the last update
        (one forward pass, for the whole dream, not one per octave): the reported end value and the
        target's probability "after" are then exactly the output's. Zoom and video frames skip it.

        A batch (B,3,H,W) dreams B independent images in one forward and backward pass per step, each
        with its own objective and step size: the same as B single dreams with the same generator (see
        ``dream_batch``). Callbacks see the whole batch.
        """
        tiled = bool(settings.tile)
        if tiled:  # memory-lean (tiles.lean_update): the source as given (uint8 stays uint8), x updated in place
            source = image if image.device == self.device else image.to(self.device)
            x = tiles.source_at(source, settings.octaves[0].size, self.device, self.path.channels_last)
        else:
            if image.dtype == torch.uint8:
                image = image.float().div_(255)
            source = self._prepare(image.clamp(0, 1))
            x = resize(source, settings.octaves[0].size)
        total = sum(o.steps for o in settings.octaves)
        n_oct = len(settings.octaves)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        records: list[tuple[Size, int, torch.Tensor, torch.Tensor]] = []
        prob_start = prob_end = None
        done = 0
        base = x  # each octave's starting image: the dreamt detail is measured against it
        view = standard_transforms(settings.jitter, settings.scale, settings.rotate, 0) if settings.robust else None
        for o_index, octave in enumerate(settings.octaves):
            if o_index > 0 and tiled:
                if settings.carry == "detail":  # the detail in place of the image, then the source added to it
                    x, base = x.sub_(base), None
                    x = tiles.add_source(F.interpolate(x, size=octave.size[::-1], mode="bilinear", align_corners=False,
                                                       antialias=octave.size[1] < x.shape[-2] or octave.size[0] < x.shape[-1]),
                                         source)
                else:
                    x = resize(x, octave.size)
            elif o_index > 0:
                if settings.carry == "detail":
                    detail = resize(x, octave.size) - resize(base, octave.size)
                    x = (resize(source, octave.size) + detail).clamp(0, 1)
                else:
                    x = resize(x, octave.size)
            base = x
            if tiled:  # updated in place: the octave's start is kept (as a copy) only where the carry needs it
                base = x.clone() if settings.carry == "detail" and o_index < n_oct - 1 else None
            x = self._prepare(x)
            mask = settings.mask.at(octave.size, self.device) if settings.mask is not None else None  # (1,1,h,w)
            values = []
            for i in range(octave.steps):
                shift, warp = (0, 0), None
                if view is not None:  # jitter, scale and rotation as one resample (transforms.py)
                    warp = view(g)
                elif settings.jitter > 0:
                    dy, dx = torch.randint(-settings.jitter, settings.jitter + 1, (2,), generator=g).tolist()
                    shift = (dy, dx)
                if tiled:  # the same step, strip by strip and in place (tiles.py): memory follows the tile
                    grad, value, acts = tiles.tiled_gradient(self, x, shift, settings.tile, settings.tile_overlap, g, warp,
                                                             tiles.grad_dtype(x.device))
                    before = x.clone() if callback is not None else x
                    blur = octave.sigma != (0.0, 0.0) and (i + 1) % settings.smooth_every == 0
                    tiles.lean_update(x, grad, octave.lr_at(i), octave.sigma_at(i) if blur else 0.0, settings, mask)
                    grad = None  # freed before the next step's gradient is accumulated
                else:
                    grad, value, acts = self.gradient(x, shift, warp)
                    if settings.lapnorm > 1 or settings.color != "rgb":
                        grad = condition_gradient(grad, lapnorm_levels=settings.lapnorm, color=settings.color)
                    before = x
                    if settings.normalize == "mean-abs":  # x + lr * g / mean|g| per image, fused, without a host sync
                        x = torch.addcmul(x, grad, octave.lr_at(i) / (grad.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8))
                    else:
                        x = x + octave.lr_at(i) * grad
                    if octave.sigma != (0.0, 0.0) and (i + 1) % settings.smooth_every == 0:
                        x = gaussian_blur(x, octave.sigma_at(i))
                    x = x.clamp(0, 1)
                    if mask is not None:  # the update (and blur) only where the mask says, scaled by it
                        x = torch.lerp(before, x, mask)
                values.append(value)
                if prob_start is None and self._targets:
                    prob_start = self.target_probability(acts)
                if callback is not None:
                    callback(Step(o_index, n_oct, i, octave.steps, done, total, before, x, acts, value))
                done += 1
                if progress is not None:
                    progress(1)
            if mask is not None and o_index == n_oct - 1 and tiled:
                tiles.restore_outside(x, mask, source)
            elif mask is not None and o_index == n_oct - 1:  # outside the mask: exactly the source (no octave bleed)
                x = torch.where(mask > 0, x, resize(source, octave.size))
            if (not values or (evaluate_end and o_index == n_oct - 1)) and tiled:
                end_value, end_acts = tiles.tiled_evaluate(self, x, settings.tile, settings.tile_overlap)
            elif not values or (evaluate_end and o_index == n_oct - 1):
                end_value, end_acts = self.evaluate(x)
            else:
                end_value, end_acts = values[-1], acts
            if o_index == n_oct - 1 and self._targets:
                prob_end = self.target_probability(end_acts)
            start_value = values[0] if values else end_value
            records.append((octave.size, octave.steps, start_value, end_value))
        # One host sync for all the numbers, after the loop.
        batch = x.shape[0]
        numbers = torch.stack([torch.stack([s, e]).reshape(2, batch) for _, _, s, e in records]).cpu() if records else None
        probs = torch.stack([prob_start, prob_end]).reshape(2, batch).cpu() if prob_start is not None and prob_end is not None else None
        items = []
        for b in range(batch):
            reports = [OctaveReport(size, n, float(numbers[k, 0, b]), float(numbers[k, 1, b]))
                       for k, (size, n, _, _) in enumerate(records)]
            tp = (float(probs[0, b]), float(probs[1, b])) if probs is not None else None
            items.append(DreamResult(image=x[b : b + 1].detach(), octaves=reports, target_probability=tp))
        if batch == 1:
            return items[0]
        return DreamResult(image=x.detach(), octaves=items[0].octaves, target_probability=items[0].target_probability,
                           items=items)

    def dream_batch(self, images: torch.Tensor, settings: DreamSettings, **kw) -> list[DreamResult]:
        """Dream B independent images (B,3,H,W) in one pass per step; one result per image."""
        result = self.dream(images, settings, **kw)
        return result.items or [result]
