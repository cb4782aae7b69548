"""What every recorder is: the hooks a render calls (``Recorder``), frames copied to the host without a wait
(``HostFrame``), the caption of a step and the note an interrupted recording leaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..engine import DreamResult, DreamSettings, Size, Step, resize


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
