"""Recorders: watch a dream step by step and turn it into files.

``ProgressRecorder`` writes the image after every step (an optimisation-progress animation);
``ActivationRecorder`` keeps every objective layer's per-feature mean activation per step (on the
device, from the activations the step already computed) and writes the article's
activation-over-time video, a CSV, heatmap overlays and a summary for the sidecar.
On CUDA, frames go to the host with non-blocking copies and are handed to the writer only once
their copy has finished, so the step loop never waits for the host.
"""

from __future__ import annotations

import contextlib
import csv
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import chart, draw
from ..engine import DreamResult, DreamSettings, Size, Step, resize
from ..errors import DreamError
from ..io.images import atomic_path

RISE_THRESHOLD = 0.10  # a feature "rose" when its mean activation grew by more than 10% of its start


class HostFrame:
    """A uint8 image on its way to the host; ``ready()`` never blocks, ``numpy()`` waits if it must."""

    def __init__(self, image: torch.Tensor, size: Size | None = None):
        t = resize(image.detach().float(), size) if size else image.detach().float()
        t = (t[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
        self.event = None
        if t.is_cuda:
            buf = torch.empty(t.shape, dtype=torch.uint8, pin_memory=True)
            buf.copy_(t, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
            t = buf
        self.tensor = t

    def ready(self) -> bool:
        return self.event is None or self.event.query()

    def numpy(self) -> np.ndarray:
        if self.event is not None:
            self.event.synchronize()
        return self.tensor.numpy()


class Recorder:
    """The one recorder protocol: ``begin`` before the first dream, ``on_step`` after every step,
    ``frame_done`` after each output frame (zoom, clip), ``finish`` at the end (its dict joins the sidecar).
    A recorder is also a context manager that opens and finalises its files; ``note`` says, after a Ctrl-C,
    what it kept."""

    outputs: list[Path] = []
    note: str | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def begin(self, first: torch.Tensor, settings: DreamSettings, engine=None) -> None:
        pass

    def on_step(self, step: Step) -> None:
        pass

    def frame_done(self, frame: np.ndarray, index: int) -> None:
        pass

    def finish(self, result: DreamResult) -> dict | None:
        return None


def step_caption(step: Step) -> str:
    return f"octave {step.octave + 1}/{step.n_octaves} · step {step.step + 1}/{step.steps}"


def interrupted_note(writer, what: str) -> str:
    """What an interrupted recording left at its path."""
    if writer.kept_earlier:
        return f"{writer.path} still holds its earlier {what} recording (this render's frames were discarded)"
    total = writer.frames_before + writer.frames_written
    if total == 0:
        return f"no {what} frames were written to {writer.path}"
    return f"{writer.path} holds {total} {what} frames"


class ProgressRecorder(Recorder):
    """The image after each optimisation step across all octaves, scaled to the final size.

    ``frames``: record the steps of this many output frames only (a zoom records its first frame's dream)."""

    def __init__(self, path: Path, *, every: int = 1, fps: float = 12.0, caption: bool = True, frames: int | None = None):
        self.path, self.every, self.fps, self.caption = Path(path), max(1, every), fps, caption
        self.frames, self._frames_done = frames, 0
        self.outputs = [self.path]
        self._pending: deque[tuple[HostFrame, str]] = deque()
        self.writer = None
        self.appended = 0

    def __enter__(self):
        from ..io.writer import open_writer

        self.writer = open_writer(self.path, fps=self.fps).__enter__()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self._flush(wait=True)
        elif exc[0] is KeyboardInterrupt:
            with contextlib.suppress(Exception):
                self._flush(wait=True)
            result = self.writer.__exit__(*exc)
            self.note = interrupted_note(self.writer, "progress")
            return result
        return self.writer.__exit__(*exc)

    def begin(self, first: torch.Tensor, settings: DreamSettings, engine=None) -> None:
        self.size = settings.octaves[-1].size
        self._pending.append((HostFrame(first, self.size), "start"))

    def on_step(self, step: Step) -> None:
        if self.frames is not None and self._frames_done >= self.frames:
            return
        if (step.global_step + 1) % self.every == 0 or step.global_step + 1 == step.total_steps:
            self._pending.append((HostFrame(step.image, self.size), step_caption(step)))
        self._flush(wait=False)

    def frame_done(self, frame: np.ndarray, index: int) -> None:
        self._frames_done += 1
        if self.frames is not None and self._frames_done == self.frames:
            self._flush(wait=True)

    def _flush(self, wait: bool) -> None:
        while self._pending and (wait or self._pending[0][0].ready()):
            frame, text = self._pending.popleft()
            image = frame.numpy()
            self.writer.append(draw.caption_bar(image, text) if self.caption else draw.fit_even(image))
            self.appended += 1

    def finish(self, result: DreamResult) -> dict:
        self._flush(wait=True)
        return {"progress": {"path": str(self.path), "frames": self.appended}}


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


class FrameOverlay(Recorder):
    """Zoom and video: one heatmap overlay per output frame (the layer's map at that frame's last step), streamed.

    Each frame is normalised on its own: a render's range is not known until it ends, and frames stream out.
    """

    def __init__(self, path: Path, *, fps: float, feature: int | None = None, caption: bool = True, append: bool = False):
        self.path, self.fps, self.feature, self.caption, self.append = Path(path), fps, feature, caption, append
        self.outputs = [self.path]
        self.writer = None
        self._heat: torch.Tensor | None = None
        self._layer = ""

    def __enter__(self):
        from ..io.writer import open_writer

        self.writer = open_writer(self.path, fps=self.fps, append=self.append).__enter__()
        return self

    def __exit__(self, *exc):
        result = self.writer.__exit__(*exc)
        if exc[0] is not None and issubclass(exc[0], KeyboardInterrupt):
            self.note = interrupted_note(self.writer, "overlay")
        return result

    def on_step(self, step: Step) -> None:
        if step.step + 1 != step.steps or step.octave + 1 != step.n_octaves:
            return
        # the deepest dreamed layer: the backbone returns its stages in order
        name = next((k for k in reversed(list(step.activations)) if k != "logits"), None)
        if name is None:
            raise DreamError("--overlay needs a layer objective (a class target alone has no map)")
        a = step.activations[name].float()[0]
        if self.feature is not None and not 0 <= self.feature < a.shape[0]:
            raise DreamError(f"--overlay-feature {self.feature} is out of range for {name} ({a.shape[0]} features)")
        self._heat = a[self.feature] if self.feature is not None else a.mean(0)
        self._layer = name + (f":{self.feature}" if self.feature is not None else "")

    def frame_done(self, frame: np.ndarray, index: int) -> None:
        """Called with each finished output frame, after its dream."""
        caption = f"frame {index + 1} · {self._layer}" if self.caption else ""
        what = "activation" if self.feature is not None else "mean activation"
        self.writer.append(draw.overlay_frame(frame, self._heat.cpu().numpy(), caption=caption,
                                              legend=f"{self._layer} {what} (this frame's range)"))


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


def recorder_outputs(values: dict) -> list[Path]:
    """The files the recording options of ``values`` (see ``options``) will write."""
    from ..options import file_values

    out = [Path(path) for _, path in file_values(values, "writes")]
    if values.get("activations"):
        out.append(Path(values["activations"]).with_suffix(".csv"))
    return out


class GuideMatch(Recorder):
    """For the sidecar (--guide): each guide's match at the start image (at the output size) and at the dream."""

    def __init__(self):
        self.start: list[tuple[float, float]] = []
        self.engine = None
        self.tile = 0

    def begin(self, first, settings, engine=None) -> None:
        from ..engine import resize
        from ..engine.guide import guide_match

        self.engine, self.tile = engine, settings.tile
        image = resize(first.to(engine.device), settings.octaves[-1].size)
        self.start = guide_match(engine.dreamer, image, self.tile)

    def finish(self, result) -> dict:
        from ..engine.guide import guide_match, guide_terms

        end = guide_match(self.engine.dreamer, result.image, self.tile)
        guides = guide_terms(self.engine.dreamer.objective)
        return {"guide": [{"image": g.label, "layer": g.layer, "match_start": s[0], "match_end": e[0],
                           "distance_start": s[1], "distance_end": e[1]}
                          for g, s, e in zip(guides, self.start, end)]}


def records_still(values: dict) -> bool:
    """Whether ``still_recorders(values)`` has a recorder (they read the start image as float32)."""
    return any(values.get(k) for k in ("progress", "activations", "overlay", "guide"))


def still_recorders(values: dict) -> list[Recorder]:
    """The recorders a still's recording options ask for (progress, activations, overlay)."""
    from ..io.writer import kind_for

    for key in ("progress", "activations", "overlay"):
        value = values.get(key)
        if value:
            try:
                kind_for(value)
            except ValueError as exc:
                raise DreamError(f"--{key} {value!r}: {exc}") from None
    caption, fps = not values.get("no_caption"), values.get("video_fps", 12.0)
    recs: list[Recorder] = []
    if values.get("progress"):
        recs.append(ProgressRecorder(Path(values["progress"]), every=values.get("progress_every", 1), fps=fps, caption=caption))
    if values.get("activations") or values.get("overlay"):
        recs.append(ActivationRecorder(
            video=Path(values["activations"]) if values.get("activations") else None,
            overlay=Path(values["overlay"]) if values.get("overlay") else None,
            overlay_feature=values.get("overlay_feature"), fps=fps, caption=caption,
        ))
    if values.get("guide"):  # the guide match at the start and the end, for the sidecar
        recs.append(GuideMatch())
    return recs


def frame_recorders(values: dict, fps: float, *, resume: bool = False, progress: bool = True) -> list[Recorder]:
    """Zoom and clip recorders: the first frame's progress (``progress``), a heatmap overlay over every frame."""
    caption = not values.get("no_caption")
    recs: list[Recorder] = []
    if progress and values.get("progress"):
        recs.append(ProgressRecorder(Path(values["progress"]), every=values.get("progress_every", 1),
                                     fps=values.get("video_fps", 12.0), caption=caption, frames=1))
    if values.get("overlay"):
        recs.append(FrameOverlay(Path(values["overlay"]), fps=fps, feature=values.get("overlay_feature"), caption=caption,
                                 append=resume))
    return recs


@contextlib.contextmanager
def recording(recorders: Sequence):
    """Enter every recorder (its writers); on Ctrl-C they keep what they finished, and the interruption carries
    ``recorder_notes``: what each recording left on disk."""
    try:
        with contextlib.ExitStack() as stack:
            for r in recorders:
                stack.enter_context(r)
            yield recorders
    except KeyboardInterrupt as exc:
        exc.recorder_notes = [r.note for r in recorders if r.note]
        raise
