"""The compiled step: the truncated model's forward (and, through autograd, its input gradient) compiled.

``torch.compile`` traces the model once per input shape (an octave's size and batch: ``dynamic=False``, so
each shape gets its own static kernels) and AOTAutograd compiles the matching backward, so a step's forward
and input gradient both run as generated kernels; the jitter roll, the view's resample, the objective and the
update stay eager around it. Chosen once per ``Dreamer`` (``fastpath.choose``): on by default on CUDA only,
where fused kernels and fewer launches pay; on the CPU it measured slower (benchmarks/RESULTS.md).
"""

from __future__ import annotations

COMPILE_CHOICES = ("auto", "on", "off")

#: Octave shapes a compiled model keeps before dynamo falls back to eager (a still has 4-6 octaves, a
#: tiled dream a few edge-tile shapes more, a batch its own): generous, as each recompile is one shape.
SHAPES_KEPT = 32


def compiled_forward(model, backend: str = "inductor", mode: str | None = None):
    """``model`` compiled per input shape: called as ``model(x, layers)``, it returns the same activations."""
    import torch
    import torch._dynamo

    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    if getattr(torch._dynamo.config, limit) < SHAPES_KEPT:
        setattr(torch._dynamo.config, limit, SHAPES_KEPT)
    return torch.compile(model, backend=backend, mode=mode, dynamic=False)


def wanted(device_type: str, choice: str) -> bool:
    """Whether a Dreamer on ``device_type`` compiles its model for ``choice`` (auto: CUDA only)."""
    if choice not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {COMPILE_CHOICES}, not {choice!r}")
    if choice == "auto":
        return device_type == "cuda"
    return choice == "on"
