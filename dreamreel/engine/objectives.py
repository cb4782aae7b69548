"""Objectives: what a dream maximises, as small objects with arithmetic.

``layer("inception4c") + 0.5 * target("bubble")`` reads like the article's ``a*g_l + b*g_t``.
A whole layer is the article's sum over features and positions scaled by 1/number-of-features,
so its gradient is the mean of its features' gradients (the article's b = 1/F), or (``square``) the
original DeepDream's half sum of squared activations, again over F and over the layer's mean |activation|:
its gradient is the activation itself (in units of its mean), so it amplifies what the layer already sees
in the picture instead of pushing every feature alike. Chosen features are summed unscaled, as the article optimises single features.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import DreamError, did_you_mean
from ..options import LAYER_OBJECTIVES  # the option table owns the choices

if TYPE_CHECKING:
    import torch


class Objective:
    """Maps a dict of stage activations to a scalar to maximise. ``bind(spec)`` validates names."""

    @property
    def layers(self) -> frozenset[str]:
        raise NotImplementedError

    def __call__(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def bind(self, spec) -> "Objective":
        return self

    def terms(self) -> list[tuple[float, "Objective"]]:
        return [(1.0, self)]

    def __add__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        return Sum(self.terms() + other.terms())

    def __radd__(self, other):
        if other == 0:  # sum([...]) starts from 0
            return self
        return NotImplemented

    def __mul__(self, weight: float) -> "Objective":
        if not isinstance(weight, (int, float)):
            return NotImplemented
        return Sum([(weight * w, t) for w, t in self.terms()])

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return -1.0 * self

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)

    def targets(self) -> list["Target"]:
        return [t for _, t in self.terms() if isinstance(t, Target)]


def check_layer(spec, name: str) -> int:
    channels = spec.layer_channels
    if name not in channels:
        hint = did_you_mean(name, channels) or f"see: dreamreel layers --model {spec.name}"
        raise DreamError(f"unknown layer {name!r} for model {spec.name}", hint)
    return channels[name]


class Layer(Objective):
    """The whole layer: sum over features and positions (``square``: half the sum of squares), over the features."""

    def __init__(self, name: str, channels: int | None = None, mode: str = "sum"):
        if mode not in LAYER_OBJECTIVES:
            raise ValueError(f"unknown layer objective {mode!r}; choose one of {', '.join(LAYER_OBJECTIVES)}")
        self.name, self.channels, self.mode = name, channels, mode

    @property
    def layers(self):
        return frozenset({self.name})

    def bind(self, spec):
        return Layer(self.name, check_layer(spec, self.name), self.mode)

    def __call__(self, acts):
        z = acts[self.name].float()
        if self.mode == "square":  # in units of the layer's own mean |activation|: comparable with the sum's weights
            return 0.5 * z.square().sum() / ((self.channels or z.shape[1]) * z.detach().abs().mean().clamp_min(1e-6))
        return z.sum() / (self.channels or z.shape[1])

    def __repr__(self):
        return f"layer({self.name!r})" if self.mode == "sum" else f"layer({self.name!r}, {self.mode!r})"


class Features(Objective):
    """Chosen features (channels) of a layer, summed over positions and features."""

    def __init__(self, name: str, indices: Sequence[int]):
        self.name, self.indices = name, tuple(indices)

    @property
    def layers(self):
        return frozenset({self.name})

    def bind(self, spec):
        channels = check_layer(spec, self.name)
        bad = [i for i in self.indices if not 0 <= i < channels]
        if bad:
            raise DreamError(
                f"feature {bad[0]} is out of range for {self.name} ({channels} features: 0-{channels - 1})"
            )
        return self

    def __call__(self, acts):
        z = acts[self.name].float()
        if len(self.indices) == 1:
            return z[:, self.indices[0]].sum()
        return z[:, list(self.indices)].sum()

    def __repr__(self):
        return f"features({self.name!r}, {list(self.indices)})"


class Target(Objective):
    """A class target: the logit of one ImageNet class (the article's y-hat)."""

    def __init__(self, cls: str | int, index: int | None = None, label: str | None = None):
        self.cls, self.index, self.label = cls, index, label

    @property
    def layers(self):
        return frozenset({"logits"})

    def bind(self, spec):
        index = resolve_class(self.cls, spec.categories())
        return Target(self.cls, index, spec.categories()[index])

    def __call__(self, acts):
        return acts["logits"][:, self.index].float().sum()

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """The target's softmax probability per image, shape (B,)."""
        return logits.float().softmax(1)[:, self.index]

    def __repr__(self):
        return f"target({self.label or self.cls!r})"


class Family(Target):
    """A class family (``family:bird``): the log-sum-exp of its classes' logits, so whichever members the picture
    is closest to grow (a soft maximum over the family rather than one species)."""

    def __init__(self, name: str, indices: Sequence[int] | None = None):
        super().__init__(f"family:{name}", None, f"family:{name}")
        self.family, self.indices = name, tuple(indices or ())

    def bind(self, spec):
        from .families import family_indices

        return Family(self.family, family_indices(self.family, spec.categories()))

    def __call__(self, acts):
        return acts["logits"][:, list(self.indices)].float().logsumexp(1).sum()

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(1)[:, list(self.indices)].sum(1)


class Sum(Objective):
    """A weighted sum of objectives: several layers at once, or a directed dream a*g_l + b*g_t."""

    def __init__(self, terms: Sequence[tuple[float, Objective]]):
        self._terms = list(terms)

    @property
    def layers(self):
        return frozenset().union(*(t.layers for _, t in self._terms))

    def terms(self):
        return list(self._terms)

    def bind(self, spec):
        return Sum([(w, t.bind(spec)) for w, t in self._terms])

    def __call__(self, acts):
        total = None
        for w, t in self._terms:
            v = t(acts) if w == 1.0 else w * t(acts)
            total = v if total is None else total + v
        return total

    def __repr__(self):
        return " + ".join(repr(t) if w == 1.0 else f"{w:g} * {t!r}" for w, t in self._terms)


def layer(name: str, mode: str = "sum") -> Layer:
    return Layer(name, mode=mode)


def features(name: str, indices: Sequence[int] | int) -> Features:
    return Features(name, [indices] if isinstance(indices, int) else indices)


def target(cls: str | int) -> Target:
    """A class target: a name, an index, or ``family:NAME`` (engine/families.py)."""
    if isinstance(cls, str) and cls.startswith("family:"):
        return Family(cls[len("family:"):].strip())
    return Target(cls)


def resolve_class(query: str | int, categories: Sequence[str]) -> int:
    """Class name (case-insensitive, any comma-separated alias) or index -> index, with a did-you-mean."""
    n = len(categories)
    text = str(query).strip()
    if re.fullmatch(r"\d+", text):
        index = int(text)
        if index >= n:
            raise DreamError(f"class index {index} is out of range (0-{n - 1})")
        return index
    lowered = [c.lower() for c in categories]
    for candidate in [text.lower()] + [part.strip().lower() for part in text.split(",") if part.strip()]:
        if candidate in lowered:
            return lowered.index(candidate)
    hint = did_you_mean(text, categories) or "class names are ImageNet's, e.g. 'bubble', 'lion', 'junco'; or an index 0-999"
    raise DreamError(f"unknown class {text!r}", hint)


MAX_FEATURES = 100_000  # more than any layer's channels


def _parse_indices(text: str, spec_text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise DreamError(f"bad feature list in {spec_text!r}", "write LAYER:3,7 or LAYER:0-7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise DreamError(f"bad feature range {part.strip()!r} in {spec_text!r}", "write low-high, e.g. 0-7")
        if hi >= MAX_FEATURES:  # no layer has that many; a range that large would not fit in memory
            raise DreamError(f"feature {hi} is out of range in {spec_text!r}",
                             "a layer's features are numbered 0 to its count - 1 (see: dreamreel layers)")
        out.extend(range(lo, hi + 1))
    return out


def parse_weight(text: str, spec_text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DreamError(f"bad weight {text!r} in {spec_text!r}", "write NAME@0.5") from None


def parse_layer_spec(text: str, mode: str = "sum") -> Objective:
    """``Mixed_6e``, ``Mixed_6e:3,7``, ``Mixed_6e:0-7``, each optionally ``@WEIGHT``; ``mode`` scores whole layers."""
    body, _, weight = text.partition("@")
    name, colon, idx = body.partition(":")
    name = name.strip()
    if not name:
        raise DreamError(f"empty layer name in {text!r}", "see: dreamreel layers")
    obj: Objective = Features(name, _parse_indices(idx, text)) if colon else Layer(name, mode=mode)
    return obj * parse_weight(weight, text) if weight else obj


def parse_target_spec(text: str) -> Objective:
    """``CLASS`` or ``CLASS@WEIGHT``; CLASS is a name (spaces and commas allowed), an index, or ``family:NAME``."""
    cls, at, weight = text.rpartition("@") if "@" in text else (text, "", "")
    cls = cls.strip()
    obj: Objective = Family(cls[len("family:"):].strip()) if cls.startswith("family:") else Target(cls)
    return obj * parse_weight(weight, text) if at else obj


def build_objective(layer_specs: Sequence[str], target_specs: Sequence[str], default_layers: str | Sequence[str],
                    mode: str = "sum") -> Objective:
    """The CLI's objective: all --layer terms plus all --target terms (the model's default layer specs when
    neither is given); ``mode`` scores every whole-layer term (``sum`` or ``square``)."""
    if not layer_specs and not target_specs:
        layer_specs = [default_layers] if isinstance(default_layers, str) else list(default_layers)
    terms = [parse_layer_spec(s, mode) for s in layer_specs] + [parse_target_spec(s) for s in target_specs]
    return sum(terms[1:], terms[0]) if len(terms) > 1 else terms[0]
