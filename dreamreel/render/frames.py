"""The one frame loop of zoom and clip renders: dream frame after frame, where each starts is a strategy.

A strategy says where frame k starts (``ZoomStart``: the last dream, warped; ``ClipStart``: the video frame plus
the last dream's detail carried along the optical flow) and what its sidecar record holds. The loop does the
rest once: recorders, quantising (the uint8 frame is both what is written and what the next frame continues
from), the streaming writer, resume checkpoints, and keeping the finished frames on Ctrl-C or an error.
Nothing here prints: results and exceptions carry what the CLI says.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..engine import DreamResult, DreamSettings
from ..errors import DreamError, short_path
from ..io.images import atomic_path, to_uint8
from . import runtime
from .runtime import Engine


@dataclass
class FrameStart:
    """Where one frame's dream starts, with what settings and seed."""

    image: torch.Tensor
    settings: DreamSettings
    seed: int
    evaluate_end: bool = True


class FrameStrategy(Protocol):
    """The part of a frame render that differs between zoom and clip."""

    name: str
    total: int  # expected frames (for the progress bar and messages)

    def restore(self, last: np.ndarray, state: dict) -> None: ...  # continue from a checkpoint's image and state
    def checkpoint_state(self) -> dict: ...  # what else the checkpoint must keep (JSON)
    def finish(self, k: int, image: torch.Tensor) -> torch.Tensor: ...  # the dream's last touch before quantising
    def indices(self, start: int) -> Iterator[int]: ...  # the frame numbers to dream, from ``start``
    def start(self, k: int, engine: Engine) -> FrameStart: ...
    def done(self, k: int, frame: np.ndarray, result: DreamResult, prepare_s: float, dream_s: float) -> dict: ...
    def checkpoint_image(self) -> np.ndarray: ...
    def wrap_writer(self, writer): ...  # the writer the frames go to (zoom --loop reorders them)

    resumable: bool  # False: an interrupted render keeps nothing and cannot --resume (zoom --loop)


@dataclass
class Partial:
    """What an interrupted or failed render kept on disk (attached to the exception as ``exc.partial``)."""

    output: Path
    frames: int  # frames in the output now
    total: int
    new: int  # frames this run added
    note: str | None = None  # why the finished frames could not be kept


@dataclass
class FramesResult:
    """A finished frame render: its output, frame count and sidecar content."""

    output: Path
    frames: int
    fps: float
    seconds: float
    sidecar: dict[str, Any]
    already_complete: bool = False  # --resume of a finished render: nothing was done
    stopped_early: str | None = None  # the source stopped decoding; the output has the frames before it


def dream_frames(strategy: FrameStrategy, engine: Engine, *, start: int = 0, recorders: Sequence = (),
                 show_progress: bool = False) -> Iterator[tuple[int, np.ndarray, dict]]:
    """Yield (k, frame as HxWx3 uint8, its record) for every frame from ``start``; recorders see every step."""
    from tqdm import tqdm

    callbacks = [r.on_step for r in recorders]
    began = False
    with tqdm(total=max(strategy.total, start), initial=start, desc=strategy.name, unit="frame", dynamic_ncols=True,
              leave=False, disable=not show_progress) as bar:
        for k in strategy.indices(start):
            t0 = time.perf_counter()
            fs = strategy.start(k, engine)
            if not began:
                for r in recorders:
                    r.begin(fs.image, fs.settings, engine)
                began = True
            t1 = time.perf_counter()
            result = runtime.run_dream(engine, fs.image.to(engine.device), fs.settings, seed=fs.seed, callbacks=callbacks,
                               desc=f"frame {k + 1}", show_progress=False, evaluate_end=fs.evaluate_end)
            frame = to_uint8(strategy.finish(k, result.image))
            t2 = time.perf_counter()
            record = strategy.done(k, frame, result, t1 - t0, t2 - t1)
            for r in recorders:
                r.frame_done(frame, k)
            bar.update(1)
            yield k, frame, record


def render_frames(strategy: FrameStrategy, engine_factory, output: Path, *, key: str, fps: float, crf: int,
                  resume: bool = False, audio_from: Path | None = None, recorders: Sequence = (),
                  show_progress: bool = False, sidecar) -> FramesResult:
    """Dream ``strategy``'s frames into ``output`` (streamed, atomic), resumable, and write its sidecar.

    ``key``: the settings' fingerprint (a checkpoint of other settings is refused). ``sidecar(state)`` builds
    the sidecar's content from a :class:`RunState`. On Ctrl-C or an error the finished frames stay a playable
    file plus a checkpoint for ``resume=True``; the exception carries a :class:`Partial`.
    """
    from ..io.sidecar import write_sidecar
    from ..io.writer import open_writer

    checkpoint = Checkpoint(output)
    start, last, records, finished = checkpoint.begin(resume, output, key)
    if finished is not None:
        return FramesResult(output, finished.get("frames", 0), finished.get("fps", fps), 0.0, finished,
                            already_complete=True)
    if last is not None:
        strategy.restore(last, checkpoint.state)
    engine = engine_factory()
    state = RunState(engine=engine, start=start, records=records, key=key, t_start=time.perf_counter())
    appended, writer = start, None
    try:
        writer = strategy.wrap_writer(open_writer(output, fps=fps, crf=crf, audio_from=audio_from, append=start > 0))
        for k, frame, record in dream_frames(strategy, engine, start=start, recorders=recorders,
                                             show_progress=show_progress):
            writer.append(frame)
            appended = k + 1
            records.append(record)
        writer.close()
    except BaseException as exc:
        new, note = appended - start, None
        if not strategy.resumable:  # its frames were held back (a --loop is written at its end): nothing to keep
            new, appended, note = 0, 0, f"a --loop render keeps no partial output: nothing was written to {output}"
        if writer is not None:
            if new > 0:  # keep the finished frames as a playable file
                try:
                    writer.close()
                except Exception as err:
                    writer.abort()
                    note, new = f"could not finish {output}: {err}", 0
            else:
                writer.abort()
        if new > 0:
            checkpoint.save(key, appended, strategy.checkpoint_image(), records, strategy.checkpoint_state())
        exc.partial = Partial(output, appended, strategy.total, new, note)
        raise
    checkpoint.remove()
    state.frames = appended = getattr(writer, "written", appended)  # a --loop writer wrote fewer than it was given
    state.seconds = time.perf_counter() - state.t_start
    data = sidecar(state)
    write_sidecar(output, data)
    return FramesResult(output, appended, fps, state.seconds, data, stopped_early=data.get("stopped_early"))


@dataclass
class RunState:
    """What a sidecar reports of a frame render."""

    engine: Engine
    start: int
    records: list[dict]
    key: str
    t_start: float
    frames: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------- resume checkpoints


class Checkpoint:
    """What an interrupted render needs to continue exactly: frames done, the last frame, per-frame records."""

    def __init__(self, output: Path):
        self.dir = output.parent / f".{output.name}.resume"
        self.state: dict = {}  # the loaded state.json

    def exists(self) -> bool:
        return (self.dir / "state.json").is_file()

    def save(self, fingerprint: str, frames_done: int, last_frame: np.ndarray, records: list[dict], extra: dict | None = None) -> None:
        import imageio.v3 as iio

        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dir / "last.png") as tmp:
            iio.imwrite(tmp, last_frame)
        state = {"fingerprint": fingerprint, "frames_done": frames_done, "records": records, **(extra or {})}
        with atomic_path(self.dir / "state.json") as tmp:
            tmp.write_text(json.dumps(state))

    def load(self, fingerprint: str) -> tuple[int, np.ndarray, list[dict], dict]:
        import imageio.v3 as iio

        state = self._read_state()
        if state.get("fingerprint") != fingerprint:
            raise DreamError(
                "cannot --resume: the interrupted render used other settings",
                "rerun with the same input and options, or drop --resume to start over",
            )
        try:
            last = iio.imread(self.dir / "last.png")
        except Exception:  # noqa: BLE001 - any reader error: the checkpoint's image is not usable
            last = None
        if not (isinstance(last, np.ndarray) and last.ndim == 3 and last.shape[-1] == 3 and last.dtype == np.uint8):
            raise DreamError(f"cannot --resume: the checkpoint image in {short_path(self.dir)} is not readable",
                             f"remove {short_path(self.dir)} and drop --resume to start over")
        self.state = state
        return state["frames_done"], last, state["records"], state

    def _read_state(self) -> dict:
        """state.json, checked for the shape ``save`` writes; garbage or another shape is a one-line DreamError."""
        hint = f"remove {short_path(self.dir)} and drop --resume to start over"
        try:
            state = json.loads((self.dir / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DreamError(f"cannot --resume: the checkpoint in {short_path(self.dir)} is unreadable "
                             f"({type(exc).__name__})", hint) from None
        ok = (isinstance(state, dict) and isinstance(state.get("fingerprint"), str)
              and isinstance(state.get("frames_done"), int) and not isinstance(state["frames_done"], bool)
              and state["frames_done"] >= 0 and isinstance(state.get("records"), list)
              and all(isinstance(r, dict) for r in state["records"]))
        if not ok:
            raise DreamError(f"cannot --resume: the checkpoint in {short_path(self.dir)} is not one dreamreel wrote", hint)
        return state

    def begin(self, resume: bool, output: Path, key: str) -> tuple[int, np.ndarray | None, list[dict], dict | None]:
        """Where a render starts: (frames done, last frame, records, None), or the finished render's sidecar as the last item."""
        if resume and self.exists():
            start, last, records, _ = self.load(key)
            return start, last, records, None
        if resume and output.exists():
            done = finished_render(output, key)
            if done is not None:
                return 0, None, [], done
            raise DreamError(f"nothing to resume at {str(output)!r}: no interrupted render was recorded",
                             "drop --resume to render it again")
        return 0, None, [], None

    def remove(self) -> None:
        for p in (self.dir / "state.json", self.dir / "last.png"):
            p.unlink(missing_ok=True)
        if self.dir.is_dir():
            try:
                self.dir.rmdir()
            except OSError:
                pass


def fingerprint(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_render(output: Path, key: str) -> dict | None:
    """The sidecar of a finished render of these very settings, or None."""
    from ..io.sidecar import sidecar_path

    try:
        data = json.loads(sidecar_path(output).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("fingerprint") == key else None
