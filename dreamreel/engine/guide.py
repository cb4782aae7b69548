"""Guided dreams (issue 14): pull the dream's layer activations toward a guide image's.

The guided dream: at every position i of the layer, the guide's feature vector g_j nearest to the dream's
x_i is where x_i should go, so the objective (maximised, like every objective) is

    - sum_i |x_i - g_{j*(i)}|^2 / (2 C),    j*(i) = argmin_j |x_i - g_j|   (the choice is not differentiated)

Its gradient is sum_i (g_{j*} - x_i) / C: each position moves toward its nearest guide feature. The
classic notebook's dot product x_i . g_{j*} (argmax of the dot product) mostly grows |x_i| instead: on
chelsea.png guided by coffee.png at the default dream it rose 8% while the cosine match below fell
0.381 -> 0.346. A ``Guide`` is an ``Objective``: it adds and scales like the others
(``layer("block10") + 0.5 * guide("coffee.png", "block10")``). The guide's features are computed once,
by the ``Dreamer`` that runs it (``prepare``), from the guide image with its longer side at
``GUIDE_SIZE`` (or smaller: never upscaled).

``guide_match(dreamer, image)`` measures how close a dream's activations are to the guide's: the mean
over positions of the best cosine similarity to any guide feature (1 = every position is some guide
feature's direction), and the mean distance to the nearest guide feature relative to the guide's RMS
feature norm (0 = every position is a guide feature). ``GuideMatch`` records both for the sidecar, at
the start (the input at the output size) and at the end.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import DreamError
from .objectives import Objective, build_objective, check_layer, parse_weight

GUIDE_SIZE = 320  # the guide image's longer side for its features (never upscaled)


class Guide(Objective):
    """Per position, the best-matching guide feature (dot product) at ``layer``."""

    def __init__(self, image: str | os.PathLike | torch.Tensor, layer: str, *, size: int = GUIDE_SIZE,
                 label: str | None = None, channels: int | None = None):
        self.image, self.layer, self.size = image, layer, size
        self.label = label or (str(image) if not isinstance(image, torch.Tensor) else "tensor")
        self.channels = channels
        self.features: torch.Tensor | None = None  # (C, N) on the dreamer's device, after prepare

    @property
    def layers(self):
        return frozenset({self.layer})

    def bind(self, spec) -> "Guide":
        channels = check_layer(spec, self.layer)
        image = self.image if isinstance(self.image, torch.Tensor) else load_guide(self.image)
        return Guide(image, self.layer, size=self.size, label=self.label, channels=channels)

    def prepare(self, dreamer) -> None:
        """Compute the guide's features with ``dreamer``'s model (called by ``Dreamer.__init__``)."""
        from .octaves import resize

        image = self.image if isinstance(self.image, torch.Tensor) else load_guide(self.image)
        h, w = image.shape[-2:]
        f = min(1.0, self.size / max(h, w))
        image = resize(image, (max(1, round(w * f)), max(1, round(h * f))))
        with torch.no_grad(), dreamer._autocast():
            acts = dreamer.model(dreamer._prepare(image), [self.layer])
        z = acts[self.layer][0].float()
        self.features = z.reshape(z.shape[0], -1).contiguous()
        self.scale = 1.0 / (2 * z.shape[0])  # per position and feature, like a layer's 1/C

    def _check(self):
        if self.features is None:
            raise RuntimeError("Guide.prepare(dreamer) has not run (a Dreamer built with this objective runs it)")

    def __call__(self, acts):
        self._check()
        z = acts[self.layer].float()
        x = z.reshape(z.shape[0], z.shape[1], -1)  # (B, C, P)
        g = self.features.to(x.dtype)  # (C, N)
        with torch.no_grad():  # the nearest guide feature per position (|x|^2 is the same for every j)
            best = ((g * g).sum(0)[None, None] - 2 * torch.einsum("bcp,cn->bpn", x, g)).argmin(-1)  # (B, P)
        matched = g.t()[best].transpose(1, 2)  # (B, C, P)
        return -((x - matched) ** 2).sum() * self.scale

    def match(self, acts) -> torch.Tensor:
        """Mean over positions of the best cosine similarity to any guide feature (no gradients)."""
        self._check()
        with torch.no_grad():
            z = acts[self.layer].float()
            x = torch.nn.functional.normalize(z.reshape(z.shape[0], z.shape[1], -1), dim=1)
            g = torch.nn.functional.normalize(self.features, dim=0)
            return torch.einsum("bcp,cn->bpn", x, g).amax(-1).mean()

    def distance(self, acts) -> torch.Tensor:
        """Mean over positions of the distance to the nearest guide feature, relative to the guide's RMS norm."""
        self._check()
        with torch.no_grad():
            z = acts[self.layer].float()
            x = z.reshape(z.shape[1], -1)
            g = self.features
            d2 = (x * x).sum(0)[:, None] - 2 * x.t() @ g + (g * g).sum(0)[None]
            return d2.min(1).values.clamp_min(0).sqrt().mean() / (g * g).sum(0).mean().sqrt()

    def __repr__(self):
        return f"guide({self.label!r}, {self.layer!r})"


def guide(image: str | os.PathLike | torch.Tensor, layer: str, size: int = GUIDE_SIZE) -> Guide:
    """A guide term: an image path or a (1,3,H,W) tensor in [0,1], matched at ``layer``."""
    return Guide(image, layer, size=size)


def load_guide(path: str | os.PathLike) -> torch.Tensor:
    from ..io.images import load_image

    p = Path(path)
    try:
        return load_image(p)
    except DreamError as exc:
        raise DreamError(f"cannot use guide image {str(p)!r}: {exc.message}", exc.hint or "use a PNG or JPEG file") from None


def parse_guide_spec(text: str, layer: str) -> Objective:
    """``IMAGE`` or ``IMAGE@WEIGHT`` (a path may itself hold an '@' when no weight follows)."""
    from ..options import guide_spec

    path, weight = guide_spec(text)
    if not path.strip():
        raise DreamError(f"empty guide image in {text!r}", "write --guide IMAGE or IMAGE@0.5")
    obj: Objective = Guide(path.strip(), layer)
    return obj * parse_weight(weight, text) if weight is not None else obj


def build_guided_objective(layer_specs: Sequence[str], target_specs: Sequence[str], guide_specs: Sequence[str],
                           guide_layer: str | None, default_layer: str, mode: str = "sum") -> Objective:
    """The CLI's objective with guides: --layer and --target terms (if any) plus one Guide term per --guide."""
    if guide_layer is None:
        guide_layer = layer_specs[0].partition("@")[0].partition(":")[0].strip() if layer_specs else default_layer
    guides = [parse_guide_spec(s, guide_layer) for s in guide_specs]
    total = sum(guides[1:], guides[0])
    if layer_specs or target_specs:
        total = build_objective(layer_specs, target_specs, default_layer, mode) + total
    return total


def guide_terms(objective: Objective) -> list[Guide]:
    return [t for _, t in objective.terms() if isinstance(t, Guide)]


def guide_match(dreamer, image: torch.Tensor, tile: int = 0) -> list[tuple[float, float]]:
    """Each guide term's (match, distance) (see ``Guide.match``, ``Guide.distance``) at ``image``; with
    ``tile``, averaged over whole tiles."""
    guides = guide_terms(dreamer.objective)
    if not guides:
        return []
    h, w = image.shape[-2:]
    if not tile or (h <= tile and w <= tile):
        _, acts = dreamer.evaluate(image)
        return [(float(g.match(acts)), float(g.distance(acts))) for g in guides]
    sums, n = [[0.0, 0.0] for _ in guides], 0
    for y in range(0, max(1, h - tile + 1), tile):
        for x in range(0, max(1, w - tile + 1), tile):
            _, acts = dreamer.evaluate(image[..., y : y + tile, x : x + tile])
            for i, g in enumerate(guides):
                sums[i][0] += float(g.match(acts))
                sums[i][1] += float(g.distance(acts))
            n += 1
    return [(a / n, b / n) for a, b in sums]
