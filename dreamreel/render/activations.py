"""``ActivationRecorder``: every objective layer's per-feature mean activation per step (on the device, from the
activations the step already computed), written as the article's activation-over-time video, a CSV, heatmap
overlays and a summary for the sidecar."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import chart, draw
from ..engine import DreamResult, DreamSettings, Step
from ..errors import DreamError
from ..io.images import atomic_path
from .recording import HostFrame, Recorder

RISE_THRESHOLD = 0.10  # a feature "rose" when its mean activation grew by more than 10% of its start


class ActivationRecorder(Recorder):
    """Per-step per-feature mean activations of the objective's layers, and what is drawn from them."""

    def __init__(self, *, video: Path | None = None, overlay: Path | None = None, overlay_feature: int | None = None,
                 fps: float = 12.0, caption: bool = True, display_height: int = 256):
        self.video, self.overlay = video, overlay
        self.overlay_feature = overlay_feature
        self.fps, self.caption, self.display_height = fps, caption, display_height
        self.csv = video.with_suffix(".csv") if video else None
        self.outputs = [p for p in (video, self.csv, overlay) if p is not None]
        self.means: dict[str, list[torch.Tensor]] = {}
        self.maps: list[torch.Tensor] = []
        self.frames: list[HostFrame] = []
        self.overlay_frames: list[HostFrame] = []  # at the output's size: the overlay matches the dream
        self.objective: list[torch.Tensor] = []
        self.target: list[torch.Tensor] = []
        self.where: list[tuple[int, int, int, int, int]] = []  # octave, n_octaves, step, steps, global step

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def begin(self, first: torch.Tensor, settings: DreamSettings, engine) -> None:
        depth = list(engine.spec.layer_channels)  # stage order: the overlay shows the deepest dreamed layer
        self.layers = sorted((l for l in engine.objective.layers if l != "logits"), key=depth.index, reverse=True)
        self.spec = engine.spec
        self.dreamer = engine.dreamer
        targets = engine.objective.targets()
        self.target_label = targets[0].label if targets else ""
        final = settings.octaves[-1].size
        self.final = final
        h = min(self.display_height, final[1])
        self.display = (max(2, round(final[0] * h / final[1])), h)
        if self.overlay_feature is not None:
            layer = self.layers[0] if self.layers else None
            channels = self.spec.layer_channels.get(layer, 0) if layer else 0
            if not 0 <= self.overlay_feature < channels:
                raise DreamError(f"--overlay-feature {self.overlay_feature} is out of range for {layer} ({channels} features)")

    def on_step(self, step: Step) -> None:
        for name in self.layers:
            self.means.setdefault(name, []).append(step.activations[name].float().mean(dim=(0, 2, 3)))
        if self.overlay is not None and self.layers:
            a = step.activations[self.layers[0]].float()[0]
            self.maps.append(a[self.overlay_feature] if self.overlay_feature is not None else a.mean(0))
        if self.target_label:
            self.target.append(self.dreamer.target_probability(step.activations))
        self.objective.append(step.objective)
        self.frames.append(HostFrame(step.input_image, self.display))
        if self.overlay is not None:
            self.overlay_frames.append(HostFrame(step.input_image, self.final))
        self.where.append((step.octave, step.n_octaves, step.step, step.steps, step.global_step))

    # ------------------------------------------------------------------ after the dream

    def finish(self, result: DreamResult) -> dict:
        means = {name: torch.stack(v).cpu().numpy() for name, v in self.means.items()}  # steps x features
        objective = torch.stack(self.objective).cpu().numpy() if self.objective else np.zeros(0)
        target = torch.stack(self.target).cpu().numpy() if self.target else None
        if self.csv is not None:
            self._write_csv(means)
        if self.video is not None:
            self._write_video(means, target)
        if self.overlay is not None:
            self._write_overlay()
        return {"activations": summarize(means, objective, [w[0] for w in self.where], target)}

    def _write_csv(self, means: dict[str, np.ndarray]) -> None:
        with atomic_path(self.csv) as tmp, open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["step", "octave", "layer", "feature", "mean_activation"])
            for t, (octave, *_rest) in enumerate(self.where):
                for name, m in means.items():
                    for feature, value in enumerate(m[t]):
                        out.writerow([t, octave, name, feature, f"{value:.6g}"])

    def _caption(self, t: int, name: str) -> str:
        octave, n_oct, step, steps, _ = self.where[t]
        return f"octave {octave + 1}/{n_oct} · step {step + 1}/{steps} · {name}" if self.caption else ""

    def _write_video(self, means: dict[str, np.ndarray], target: np.ndarray | None) -> None:
        from ..io.writer import open_writer

        name = self.layers[0] if self.layers else None
        m = means[name] if name else None
        total = len(self.where)
        if m is not None:
            lo, hi = float(min(m.min(), 0.0)), float(m.max())
            pad = 0.05 * (hi - lo or 1.0)
            y_range = (lo - (pad if lo < 0 else 0.0), hi + pad)
        t_range = (0.0, 1.0) if target is not None else None
        with open_writer(self.video, fps=self.fps) as writer:
            for t, frame in enumerate(self.frames):
                image = frame.numpy()
                if m is not None:
                    out = chart.activation_chart_frame(
                        image, m[t], ghost=m[0], y_range=y_range, caption=self._caption(t, name), layer=name,
                        target_series=None if target is None else target[: t + 1], target_range=t_range,
                        target_label=f"p({self.target_label})" if target is not None else "", total_steps=total,
                    )
                else:  # a class target alone: the image beside the probability curve
                    zero = np.zeros(1, dtype=np.float32)
                    out = chart.activation_chart_frame(
                        image, zero, ghost=zero, y_range=(0.0, 1.0), caption=self._caption(t, "logits"), layer="",
                        target_series=target[: t + 1], target_range=t_range,
                        target_label=f"p({self.target_label})", total_steps=total,
                    )
                writer.append(out)

    def _write_overlay(self) -> None:
        from ..io.writer import open_writer

        if not self.maps:
            raise DreamError("--overlay needs a layer objective (a class target alone has no map)")
        maps = [x.cpu().numpy() for x in self.maps]
        lo = min(float(x.min()) for x in maps)
        hi = max(float(x.max()) for x in maps)
        name = self.layers[0] + (f":{self.overlay_feature}" if self.overlay_feature is not None else "")
        with open_writer(self.overlay, fps=self.fps) as writer:
            for t, (frame, heat) in enumerate(zip(self.overlay_frames, maps)):
                writer.append(draw.overlay_frame(frame.numpy(), heat, value_range=(lo, hi), caption=self._caption(t, name),
                                                 legend=f"{name} {'activation' if self.overlay_feature is not None else 'mean activation'}"))


def summarize(means: dict[str, np.ndarray], objective: np.ndarray, octaves: Sequence[int],
              target: np.ndarray | None = None) -> dict:
    """Per layer, how many features rose by more than 10%; how jumpy the objective was within octaves."""
    layers = {}
    for name, m in means.items():
        start, end = m[0], m[-1]
        rose = (end - start) > RISE_THRESHOLD * np.maximum(np.abs(start), 1e-6)
        layers[name] = {"features": int(m.shape[1]), "rose_over_10pct": int(rose.sum()), "did_not": int((~rose).sum())}
    out = {"layers": layers, "steps": int(len(objective))}
    out["objective_max_step_jump"] = max_step_jump(objective, octaves)
    if target is not None:
        out["target_probability_max_step_jump"] = max_step_jump(target, octaves)
    return out


def max_step_jump(series: np.ndarray, octaves: Sequence[int]) -> float | None:
    """Largest single-step change within an octave, relative to the series' range (0 smooth ... 1 one jump)."""
    s = np.asarray(series, dtype=np.float64)
    if len(s) < 2:
        return None
    same = np.asarray(octaves[1:]) == np.asarray(octaves[:-1])
    diffs = np.abs(np.diff(s))[same]
    span = float(s.max() - s.min())
    if diffs.size == 0 or span == 0:
        return 0.0
    return float(diffs.max() / span)
