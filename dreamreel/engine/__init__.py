"""The dream engine: objectives on a truncated model, and the octave loop (no files, no CLI)."""

from . import compiled, fastpath
from .filters import Size, gaussian_blur, resize
from .octaves import (DreamResult, Dreamer, DreamSettings, Octave, OctaveReport, Step, noise_image, octave_sizes,
                      pick_device, device_problem)
from .objectives import Objective, build_objective, features, layer, target

__all__ = ["DreamResult", "Dreamer", "DreamSettings", "Octave", "OctaveReport", "Size", "Step", "gaussian_blur",
           "noise_image", "octave_sizes", "pick_device", "device_problem", "resize", "Objective", "build_objective", "features",
           "layer", "target"]
