"""``create_model(name, weights)``: a registered model built, with its weights, frozen, on a device."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DreamError
from .registry import ModelSpec, get_spec

if TYPE_CHECKING:
    import torch

    from .backbone import Backbone

__all__ = ["create_model", "describe_weights", "check_weights_arg", "load_state_dict_file", "WEIGHT_CHOICES"]

WEIGHT_CHOICES = ("default", "random", "PATH")


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
