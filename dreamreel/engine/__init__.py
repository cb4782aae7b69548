"""The dream engine: objectives on a truncated model, and the octave loop (no files, no CLI)."""

from . import compiled, fastpath
from .octaves import (DreamResult, Dreamer, DreamSettings, Octave, OctaveReport, Size, Step, gaussian_blur,
                      noise_image, octave_sizes, pick_device, device_problem, resize)
from .objectives import Objective, build_objective, features, layer, target

__all__ = ["DreamResult", "Dreamer", "DreamSettings", "Octave", "OctaveReport", "Size", "Step", "gaussian_blur",
           "noise_image", "octave_sizes", "pick_device", "device_problem", "resize", "Objective", "build_objective", "features",
           "layer", "target"]
