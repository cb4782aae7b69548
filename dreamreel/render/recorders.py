"""Recorders: watch a dream step by step and turn it into files.

``ProgressRecorder`` writes the image after every step (an optimisation-progress animation);
``activations.ActivationRecorder`` the article's activation-over-time video; ``FrameOverlay`` heatmaps on frames;
``GuideMatch`` how close a guided dream came. The functions below choose a command's recorders.
On CUDA, frames go to the host with non-blocking copies and are handed to the writer only once
their copy has finished, so the step loop never waits for the host.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import draw
from ..engine import DreamResult, DreamSettings, Step
from ..errors import DreamError
from .activations import ActivationRecorder
from .recording import HostFrame, Recorder, interrupted_note, step_caption

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
    from ..io.outputs import kind_for

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
    """Enter every recorder (its writers); on Ctrl-C they keep what they finished, and the interruption's outcome
    notes what each recording left on disk."""
    from ..outcome import reraise

    try:
        with contextlib.ExitStack() as stack:
            for r in recorders:
                stack.enter_context(r)
            yield recorders
    except KeyboardInterrupt as exc:
        reraise(exc, notes=[r.note for r in recorders if r.note])
