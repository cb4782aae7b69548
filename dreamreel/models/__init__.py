"""The model zoo: one registry, one ``create_model(name, weights)``, one spec per model.

A spec knows how to build the architecture as ordered stages (see ``Backbone``), where its
weights come from, its input normalisation (inside the Backbone), its dreamable layers and its
class names. A new model is one ``register`` call.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DreamError, did_you_mean

if TYPE_CHECKING:  # the registry's metadata needs no torch: `dreamreel models` stays light
    import torch

    from .backbone import Backbone

__all__ = ["ModelSpec", "register", "list_models", "get_spec", "create_model", "describe_weights", "check_weights_arg",
           "load_state_dict_file", "WEIGHT_CHOICES"]

WEIGHT_CHOICES = ("default", "random", "PATH")


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


def describe_weights(weights: str) -> str:
    return weights if weights in ("default", "random") else f"file:{Path(weights).resolve()}"


def check_weights_arg(weights: str) -> None:
    """Validate ``--weights`` without loading anything."""
    if weights in ("default", "random"):
        return
    path = Path(weights)
    if not path.is_file():
        raise DreamError(f"weights file {weights!r} does not exist", "use --weights default|random|PATH to a state dict")


def load_state_dict_file(path: str | os.PathLike) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; its first line may say little
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DreamError(f"not a PyTorch state dict that torch.load can read safely: weights file {str(path)!r} "
                         f"({first})", "give a .pth/.pt state dict, or --weights default|random") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DreamError(f"weights file {str(path)!r} does not hold a state dict")
    return state


def create_model(name: str, weights: str = "default", device: str | torch.device = "cpu",
                 fold: bool = True) -> tuple[ModelSpec, Backbone]:
    """Build ``name`` with ``weights`` ("default", "random" or a state-dict path), in eval mode, frozen, on ``device``.

    ``fold``: fold batch norms into their convolutions (same function; ``fold=False`` keeps the
    module tree as the weights file has it).
    """
    spec = get_spec(name)
    check_weights_arg(weights)
    if weights == "random":
        state = None
    elif weights == "default":
        state = spec.default_weights()
    else:
        state = load_state_dict_file(weights)
    try:
        model = spec.build(state)
    except (RuntimeError, KeyError) as exc:
        raise DreamError(
            f"weights do not fit {spec.name}: {str(exc).splitlines()[0][:200]}",
            f"is this a {spec.name} state dict?",
        ) from None
    model.eval().requires_grad_(False)
    if fold:
        from .fold import fold_batchnorms

        fold_batchnorms(model)  # frozen batch norms become conv weights: ~15-30% faster steps (fold.py)
    return spec, model.to(device)


from . import zoo  # noqa: E402,F401  (registers the models)
