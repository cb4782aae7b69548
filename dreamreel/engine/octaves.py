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

from . import compiled, fastpath
from .filters import Size
from .objectives import Objective
from .transforms import Warp, standard_transforms
from .update import update_rule

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
    mask: object = None  # an engine.masks.Mask: dream only where it says (per-step blend; exact outside)

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
        # precision and memory format for this device: see fastpath.py
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

    def autocast(self):
        return self.path.autocast()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.path.channels_last else x

    def evaluate(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Objective value and activations at ``image``, without gradients."""
        with torch.no_grad(), self.autocast():
            acts = self.forward(self.prepare(image), self.layers)
            return self._value(acts).float(), acts

    def _value(self, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The objective: a scalar for one image; for a batch, one value per image (shape (B,))."""
        n = next(iter(acts.values())).shape[0]
        if n == 1:
            return self.objective(acts)
        return torch.stack([self.objective({k: v[i : i + 1] for k, v in acts.items()}) for i in range(n)])

    def gradient(self, image: torch.Tensor, shift: tuple[int, int] = (0, 0), warp: Warp | None = None):
        """Gradient of the objective w.r.t. ``image`` (jittered by ``shift``, or seen through ``warp``), its value and the activations."""
        x = self.prepare(image.detach()).requires_grad_(True)
        xin = torch.roll(x, shift, dims=(2, 3)) if shift != (0, 0) else x
        if warp is not None:
            xin = warp.apply(xin)
        with self.autocast():
            acts = self.forward(xin, self.layers)
            value = self._value(acts)
        # a batch's images are independent (eval mode), so the sum's gradient is each image's own gradient
        (grad,) = torch.autograd.grad(value.sum(), x)
        return grad, value.detach().float(), {k: v.detach() for k, v in acts.items()}

    def target_probability(self, acts: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self._targets or "logits" not in acts:  # tiled dreams keep no whole-image logits
            return None
        p = self._targets[0].probability(acts["logits"])
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
        rule = update_rule(self, settings)  # the layout (dense or tiled): update.py
        source, x = rule.start(image, settings.octaves[0].size)
        total = sum(o.steps for o in settings.octaves)
        n_oct = len(settings.octaves)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        records: list[tuple[Size, int, torch.Tensor, torch.Tensor]] = []
        prob_start = prob_end = None
        done = 0
        base = x  # each octave's starting image: the dreamt detail is measured against it
        view = standard_transforms(settings.jitter, settings.scale, settings.rotate, 0) if settings.robust else None
        for o_index, octave in enumerate(settings.octaves):
            last = o_index == n_oct - 1
            x, base = rule.begin_octave(x, base, source, octave.size, o_index == 0, last)
            mask = settings.mask.at(octave.size, self.device) if settings.mask is not None else None  # (1,1,h,w)
            values = []
            for i in range(octave.steps):
                shift, warp = (0, 0), None
                if view is not None:  # jitter, scale and rotation as one resample (transforms.py)
                    warp = view(g)
                elif settings.jitter > 0:
                    dy, dx = torch.randint(-settings.jitter, settings.jitter + 1, (2,), generator=g).tolist()
                    shift = (dy, dx)
                blur = octave.sigma != (0.0, 0.0) and (i + 1) % settings.smooth_every == 0
                before, x, value, acts = rule.step(x, shift, warp, g, octave.lr_at(i), octave.sigma_at(i) if blur else 0.0,
                                                   mask, callback is not None)
                values.append(value)
                if prob_start is None and self._targets:
                    prob_start = self.target_probability(acts)
                if callback is not None:
                    callback(Step(o_index, n_oct, i, octave.steps, done, total, before, x, acts, value))
                done += 1
                if progress is not None:
                    progress(1)
            if mask is not None and last:
                x = rule.finish(x, mask, source, octave.size)
            if not values or (evaluate_end and last):
                end_value, end_acts = rule.evaluate(x)
            else:
                end_value, end_acts = values[-1], acts
            if last and self._targets:
                prob_end = self.target_probability(end_acts)
            records.append((octave.size, octave.steps, values[0] if values else end_value, end_value))
        return _results(x, records, prob_start, prob_end)

    def dream_batch(self, images: torch.Tensor, settings: DreamSettings, **kw) -> list[DreamResult]:
        """Dream B independent images (B,3,H,W) in one pass per step; one result per image."""
        result = self.dream(images, settings, **kw)
        return result.items or [result]


def _results(x: torch.Tensor, records: list, prob_start, prob_end) -> DreamResult:
    """The dream's result (a batch's: one item per image), with one host sync for all the numbers."""
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
