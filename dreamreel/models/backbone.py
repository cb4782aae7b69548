"""A CNN cut into named stages that run in order, so a forward pass can stop at the deepest layer asked for."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import nn


class Backbone(nn.Module):
    """Runs ``stages`` in order on normalised pixels and returns the requested stages' outputs.

    The input is an image batch in [0, 1]; normalisation (``mean``/``std``) is part of the graph,
    so gradients are taken with respect to [0, 1] pixels. Stages after the deepest requested one
    never run: that is the truncation every dream relies on for speed.
    """

    def __init__(self, stages: Sequence[tuple[str, nn.Module]], mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.stage_names = [name for name, _ in stages]
        self.stages = nn.ModuleList(module for _, module in stages)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def depth_of(self, layer: str) -> int:
        return self.stage_names.index(layer)

    def forward(self, x: torch.Tensor, layers: Collection[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted.difference(self.stage_names)
        if unknown:
            raise KeyError(f"unknown layer(s) {sorted(unknown)}")
        out: dict[str, torch.Tensor] = {}
        x = (x - self.mean) / self.std
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)
