"""Engine overhead: N dream steps against N bare forward+backward passes of the same truncated model.

Prints steps/s for the article's models (random weights: speed only) and the embedded model,
and ends with ``overhead_ratio=X`` (target <= 1.05 on the CPU).
"""

from __future__ import annotations

import argparse
import statistics

from _common import interleaved, machine

import torch

from dreamreel.engine import Dreamer, DreamSettings, Octave
from dreamreel.models import create_model
from dreamreel.engine.objectives import layer


def bare_steps(model, name, channels, x, n, channels_last=False, bf16=False):
    """N bare forward+input-gradient passes: no jitter, update, blur or clamp; the floor for the engine."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def run():
        for _ in range(n):
            xi = x.detach().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                value = model(xi, [name])[name].float().sum() / channels
            torch.autograd.grad(value, xi)
    return run


def dream_steps(dreamer, x, n, size, evaluate_end=False):
    """N engine steps; the end-of-octave objective measurement (one forward pass) is timed apart."""
    settings = DreamSettings((Octave(size, n, (0.02, 0.01), (0.5, 0.25)),), jitter=16)
    return lambda: dreamer.dream(x, settings, generator=torch.Generator().manual_seed(0), evaluate_end=evaluate_end)


def steps_per_second(model_name, layer_name, size, n, weights="random"):
    spec, model = create_model(model_name, weights)
    d = Dreamer(model, layer(layer_name).bind(spec))
    x = torch.rand(1, 3, size, size)
    t = interleaved({"dream": dream_steps(d, x, n, (size, size))}, repeats=1)["dream"]
    return n / t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="skip the torchvision models' steps/s")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"machine: {machine()}")
    if not a.quick:
        for model_name, layer_name in (("googlenet", "inception4c"), ("inception_v3", "Mixed_6e")):
            for size in (299, 460):
                print(f"{model_name}->{layer_name} {size}px (random weights): {steps_per_second(model_name, layer_name, size, 3):.2f} steps/s")
        print(f"efficientnet_lite0->block10 512px (embedded weights): "
              f"{steps_per_second('efficientnet_lite0', 'block10', 512, 5, 'default'):.2f} steps/s")
    spec, model = create_model("efficientnet_lite0", "default")
    obj = layer("block10").bind(spec)
    d = Dreamer(model, obj)
    x = torch.rand(1, 3, a.size, a.size)
    channels = spec.layer_channels["block10"]
    bf16 = d.path.autocast_dtype is not None
    # the floor is the fastest bare pass: both memory formats (the model is channels-last since the Dreamer
    # made it so; a contiguous input then runs oneDNN's own reorders), at the engine's precision
    floors = {
        "bare contiguous": bare_steps(model, "block10", channels, x, a.steps, bf16=bf16),
        "bare channels-last": bare_steps(model, "block10", channels, x, a.steps, channels_last=True, bf16=bf16),
    }
    runs = {
        **floors,
        "dream": dream_steps(d, x, a.steps, (a.size, a.size)),
        "dream+eval": dream_steps(d, x, a.steps, (a.size, a.size), evaluate_end=True),
    }
    raw = interleaved(runs, repeats=a.repeats, stat=list)
    t = {k: min(v) for k, v in raw.items()}  # min: the machine's noise only ever adds time
    floor_name = min(floors, key=t.get)
    floor = t[floor_name]
    # Each round ran every callable back to back, so a round's dream / its fastest bare pass cancels the slow
    # drifts of a shared machine; the median of those paired ratios is the overhead figure (the ratio of the
    # minima, printed too, rests on two lucky samples).
    paired = statistics.median(raw["dream"][r] / min(raw[k][r] for k in floors) for r in range(a.repeats))
    print(f"{a.steps} steps at {a.size}px, best of {a.repeats} ({d.path.describe()}): "
          + ", ".join(f"{k} {t[k]:.3f} s" for k in floors)
          + f"; floor = {floor_name}; dream {t['dream']:.3f} s (jitter, mean-abs step, blur, clamp); "
          f"with the output's objective measured (one forward) {t['dream+eval']:.3f} s (ratio {t['dream+eval'] / floor:.3f})")
    print(f"ratio of the minima {t['dream'] / floor:.3f}; median of the {a.repeats} paired rounds' ratios {paired:.3f}")
    print(f"overhead_ratio={paired:.3f}")


if __name__ == "__main__":
    main()
