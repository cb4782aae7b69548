"""Recording costs: drawing a chart/overlay frame against a dream step, and a run with the recorder against one without.

Targets: a drawn frame < 20% of a dream step at the same size; recording adds < 5% to a run.
"""

from __future__ import annotations

import argparse

from _common import interleaved, machine

import numpy as np
import torch

from dreamreel.render import chart, draw
from dreamreel.engine import Dreamer, DreamSettings, Octave
from dreamreel.models import create_model
from dreamreel.engine.objectives import layer
from dreamreel.render.activations import ActivationRecorder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(f"machine: {machine()}")
    spec, model = create_model("efficientnet_lite0", "default")
    d = Dreamer(model, layer("block10").bind(spec))
    size = (a.size, a.size)
    settings = DreamSettings((Octave(size, a.steps, (0.02, 0.01), (0.5, 0.25)),), jitter=16)
    x = torch.rand(1, 3, a.size, a.size)

    class Engine:
        objective, dreamer = d.objective, d

    Engine.spec = spec

    def plain():
        d.dream(x, settings, generator=torch.Generator().manual_seed(0))

    def recorded():
        rec = ActivationRecorder(display_height=a.size)
        rec.begin(x, settings, Engine)
        d.dream(x, settings, generator=torch.Generator().manual_seed(0), callback=rec.on_step)

    image = (np.random.default_rng(0).random((a.size, a.size, 3)) * 255).astype(np.uint8)
    means = np.random.default_rng(1).normal(size=112).astype(np.float32)
    heat = np.random.default_rng(2).random((a.size // 16, a.size // 16)).astype(np.float32)

    def charts():
        for _ in range(a.steps):
            chart.activation_chart_frame(image, means, ghost=means * 0.9, y_range=(-5, 5),
                                         caption="octave 1/1 · step 1/10", layer="block10")

    def overlays():
        for _ in range(a.steps):
            draw.overlay_frame(image, heat, value_range=(0, 1), caption="octave 1/1 · step 1/10")

    t = interleaved({"plain": plain, "recorded": recorded, "charts": charts, "overlays": overlays}, repeats=a.repeats)
    step = t["plain"] / a.steps
    print(f"{a.size}px, {a.steps} steps, median of {a.repeats}: dream step {step * 1000:.1f} ms, "
          f"chart frame {t['charts'] / a.steps * 1000:.2f} ms, overlay frame {t['overlays'] / a.steps * 1000:.2f} ms")
    print(f"chart_frame_over_step={t['charts'] / t['plain']:.3f} (target < 0.20)")
    print(f"overlay_frame_over_step={t['overlays'] / t['plain']:.3f} (target < 0.20)")
    print(f"recording_ratio={t['recorded'] / t['plain']:.3f} (target < 1.05)")


if __name__ == "__main__":
    main()
