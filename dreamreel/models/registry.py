"""The model registry: one ``ModelSpec`` per name (a leaf module: no model code, no torch).

A spec knows how to build the architecture as ordered stages (see ``Backbone``), where its weights
come from, its input normalisation (inside the Backbone), its dreamable layers and its class names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import DreamError, did_you_mean

if TYPE_CHECKING:  # the registry's metadata needs no torch: `dreamreel models` stays light
    from .backbone import Backbone

__all__ = ["ModelSpec", "register", "list_models", "get_spec"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[dict | None], Backbone]  # state dict (or None: random init) -> staged model
    default_weights: Callable[[], dict]  # loads the default state dict, raising DreamError when unavailable
    weights_source: str  # where default weights come from, in words
    categories: Callable[[], list[str]]
    default_layer: str  # the deepest layer of the default objective (a guide's layer, the one `layers` marks)
    dreamable: Callable[[str], bool]  # which stage names a user may dream (logits is a target, not a layer)
    native_size: int = 224
    min_size: int = 32  # smallest side a dream octave may have
    notes: dict[str, str] = field(default_factory=dict)  # layer -> short description for `dreamreel layers`
    default_mix: tuple[str, ...] = ()  # the default objective's --layer specs when it is more than default_layer

    @property
    def default_layers(self) -> tuple[str, ...]:
        """The --layer specs of a dream that names no layer or target."""
        return self.default_mix or (self.default_layer,)

    @functools.cached_property
    def layer_channels(self) -> dict[str, int]:
        """Dreamable layer -> channel count: the written-down table (channels.py), else measured."""
        from .channels import LAYER_CHANNELS

        known = LAYER_CHANNELS.get(self.name)
        return dict(known) if known is not None else self.measure_layer_channels()

    def measure_layer_channels(self) -> dict[str, int]:
        """Dreamable layer -> channel count, found by a shape-only pass on the meta device (no weights, no compute)."""
        import torch

        with torch.device("meta"):
            model = self.build(None)
            x = torch.zeros(1, 3, max(self.native_size, 96), max(self.native_size, 96))
            names = [n for n in model.stage_names if self.dreamable(n)]
            outs = model(x, names)
        return {n: int(outs[n].shape[1]) for n in names}

    @property
    def layers(self) -> list[str]:
        return list(self.layer_channels)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` under its name; a second spec of a registered name is refused, not swapped in silently."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[ModelSpec]:
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        hint = did_you_mean(name, _REGISTRY) or f"known models: {', '.join(_REGISTRY)}"
        raise DreamError(f"unknown model {name!r}", hint)
    return _REGISTRY[key]
