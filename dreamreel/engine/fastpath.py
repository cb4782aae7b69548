"""How a dream runs fast on its device: precision, memory format, and the CUDA graph/compile path.

The engine asks here once per ``Dreamer``; nothing in the step loop branches on the machine.

- **Memory format.** channels-last on every device: forward plus input-gradient to the dreamed
  layer is faster on the CPU too (oneDNN picks NHWC kernels), and on CUDA.
- **Precision.** bf16 autocast on CUDA, and on CPUs with AMX tiles (Intel Sapphire Rapids and later),
  where oneDNN runs bf16 convolutions on the matrix units (speed-ups in benchmarks/RESULTS.md). Elsewhere fp32:
  without AMX,
  bf16 on the CPU is emulated and slower. The image, its gradient and the update stay fp32;
  only the network runs in bf16.
- **Compiled step** (``compiled.py``): torch.compile of the truncated model per octave shape, on by
  default on CUDA only (``compile="auto"``); on the CPU it measured slower than eager.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_amx_bf16() -> bool:
    """True when the CPU advertises AMX bf16 tiles (Linux /proc/cpuinfo); False where that cannot be told."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        return False
    return False


@dataclass(frozen=True)
class FastPath:
    """What a Dreamer does on its device: autocast dtype (None: fp32) and channels-last."""

    device_type: str
    autocast_dtype: str | None  # "bfloat16" or None
    channels_last: bool
    compiled: bool = False  # the model's forward (and input gradient) compiled per octave shape

    def autocast(self):
        import contextlib

        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=getattr(torch, self.autocast_dtype))

    def describe(self) -> str:
        return (f"{self.autocast_dtype or 'fp32'}, {'channels-last' if self.channels_last else 'contiguous'}"
                + (", compiled" if self.compiled else ""))


def choose(device_type: str, precision: str = "auto", channels_last: bool | None = None,
           amx: bool | None = None, grouped_convs: bool = False, compile: str = "auto") -> FastPath:
    """The fast path for ``device_type`` ("cpu", "cuda", "mps"): pure, so it is unit-tested on any machine.

    ``precision`` "auto" is bf16 on CUDA, and on AMX CPUs for networks without grouped (depthwise)
    convolutions: EfficientNet-Lite0's depthwise convs make its bf16 step slower than fp32 (benchmarks/RESULTS.md).
    fp32 elsewhere.
    """
    from .compiled import wanted

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if amx is None:
        amx = cpu_has_amx_bf16() if device_type == "cpu" else False
    if precision == "auto":
        bf16 = device_type == "cuda" or (device_type == "cpu" and amx and not grouped_convs)
    else:
        bf16 = precision == "bf16"
    if channels_last is None:
        channels_last = device_type in ("cpu", "cuda")
    return FastPath(device_type, "bfloat16" if bf16 else None, channels_last, wanted(device_type, compile))


def has_grouped_convs(model) -> bool:
    """Whether ``model`` has grouped (e.g. depthwise) convolutions, which oneDNN runs slower in bf16 on the CPU."""
    from torch import nn

    return any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())
