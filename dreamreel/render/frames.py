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
from ..errors import DreamError
from ..io.images import atomic_path, to_uint8
from .. import interrupts
from ..outcome import Partial, reraise
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
    def checkpoint_shape(self) -> tuple[int, int, int]: ...  # what checkpoint_image's shape must be
    def wrap_writer(self, writer): ...  # the writer the frames go to (zoom --loop reorders them)

    resumable: bool  # False: an interrupted render keeps nothing and cannot --resume (zoom --loop)


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
                  show_progress: bool = False, sidecar, tween=None,
                  notes: Mapping[str, Any] | None = None) -> FramesResult:
    """Dream ``strategy``'s frames into ``output`` (streamed, atomic), resumable, and write its sidecar.

    ``key``: the settings' fingerprint (a checkpoint of other settings is refused). ``sidecar(state)`` builds
    the sidecar's content from a :class:`RunState`. On Ctrl-C, SIGTERM or an error the finished frames stay a
    playable file plus a checkpoint for ``resume=True``; the exception carries a :class:`Partial`. The file is
    ``output`` itself unless ``output`` holds a finished render (or anything else that is not this render's
    partial): that one, and its sidecar, stay until the new render is complete, and the frames wait in the
    checkpoint folder. The frame counts reported are the frames in the files. ``tween`` (``tween.ZoomTween``
    / ``ClipTween``): ``tween.factor - 1`` in-betweens after each dreamt frame, the file at ``tween.factor`` x
    ``fps``. ``notes`` join the sidecar (``draft``).
    """
    from ..io.sidecar import write_sidecar
    from ..io.writer import open_writer
    from ..io.outputs import count_frames, move_output

    factor = tween.factor if tween is not None else 1
    if factor > 1:  # another file: a checkpoint or a finished render of other in-betweens is not this one's
        key = fingerprint({"frames": key, "interpolate": factor})
    checkpoint = Checkpoint(output)
    had_dir = checkpoint.dir.exists()
    made = [d for d in (output.parent, *output.parent.parents) if not d.exists()]  # what the writer will create
    start, last, records, finished, target = checkpoint.begin(resume, output, key, strategy.checkpoint_shape(),
                                                              factor=factor)
    if finished is not None:
        return FramesResult(output, finished.get("frames", 0), finished.get("fps", fps), 0.0, finished,
                            already_complete=True)
    if last is not None:
        strategy.restore(last, checkpoint.state)
    appended, writer, state, image, extra = start, None, None, last, checkpoint.state
    try:
        engine = engine_factory()
        state = RunState(engine=engine, start=start, records=records, key=key, t_start=time.perf_counter())
        writer = strategy.wrap_writer(open_writer(target, fps=fps * factor, crf=crf, audio_from=audio_from,
                                                  append=start > 0, names=output))
        if tween is not None:
            from .tween import TweenWriter

            writer = TweenWriter(writer, tween, dreamt_before=start)
        for k, frame, record in dream_frames(strategy, engine, start=start, recorders=recorders,
                                             show_progress=show_progress):
            with interrupts.held():  # a signal lands before or after this: count, records and image match the file
                writer.append(frame)
                records.append(record)
                appended, image, extra = k + 1, strategy.checkpoint_image(), strategy.checkpoint_state()
        with interrupts.finishing():
            if tween is not None:
                writer.end()  # complete: the in-betweens after the last dreamt frame
            writer.close()
    except BaseException as exc:
        with interrupts.finishing():  # a second Ctrl-C must not cut this short
            kept = _keep(writer, checkpoint, strategy, key, output, target, start, appended, image, extra, records,
                         had_dir, made)
            if factor > 1 and kept is not None:  # the file's frames, in-betweens included
                from dataclasses import replace

                from .tween import file_frames

                kept = replace(kept, frames=file_frames(kept.frames, factor),
                               total=file_frames(kept.total, factor, complete=True))
        reraise(exc, partial=kept)
    with interrupts.finishing():
        frames, expected = count_frames(target), writer.written  # a --loop writes fewer
        if frames != expected:
            raise DreamError(f"{target} holds {frames} frames, not the {expected} rendered", "render it again")
        if target != output:
            move_output(target, output)  # the new render is complete: now it replaces the old output
        checkpoint.remove()
        state.frames = frames
        state.seconds = time.perf_counter() - state.t_start
        data = {**sidecar(state), **(notes or {})}
        if tween is not None:
            data.update(fps=fps * factor, fingerprint=key, interpolate=writer.describe(appended))
        write_sidecar(output, data)
    return FramesResult(output, frames, fps * factor, state.seconds, data, stopped_early=data.get("stopped_early"))


def _keep(writer, checkpoint: "Checkpoint", strategy: FrameStrategy, key: str, output: Path, target: Path, start: int,
          appended: int, image: np.ndarray | None, extra: dict, records: list[dict], had_dir: bool,
          made: list[Path]) -> Partial:
    """After an interruption or error: finish the frames done as a playable file, checkpoint them, say where."""
    new, note = appended - start, None
    if not strategy.resumable:  # its frames were held back (a --loop is written at its end): keep nothing
        new, note = 0, f"a --loop render keeps no partial output: nothing was written to {output}"
    if writer is not None:
        if new > 0:
            try:
                writer.close()
            except Exception as err:
                writer.abort()
                note, new = f"could not keep the {new} new frames of {output} ({_first_line(err)})", 0
        else:
            writer.abort()
    kept = start + new
    if new > 0:
        try:
            checkpoint.save(key, appended, image, records[:appended], extra, in_checkpoint=target != output)
        except Exception as err:
            note = f"{target} holds {kept} frames, but its checkpoint could not be saved ({_first_line(err)})"
    elif kept == 0:  # nothing to keep: remove the folders made for it
        for d in ([] if had_dir else [checkpoint.dir]) + made:
            try:
                d.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                break
    return Partial(output, kept, strategy.total, new, note, target)


def _first_line(err) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[0] if lines else type(err).__name__)[:120]


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
    """What an interrupted render needs to continue exactly: frames done, the last frame, per-frame records.

    ``.OUT.resume/`` beside the output holds ``state.json`` and ``last.png``; when the output path held a
    finished render, the interrupted render's frames too (``partial.mp4``, ``partial.gif`` or ``partial/``).
    """

    def __init__(self, output: Path):
        self.output = output
        self.dir = runtime.resume_folder(output)
        self.state: dict = {}  # the loaded state.json

    def exists(self) -> bool:
        return (self.dir / "state.json").is_file()

    def partial_path(self) -> Path:
        from ..io.outputs import kind_for

        kind = kind_for(self.output)
        return self.dir / ("partial" if kind == "frames" else f"partial.{kind}")

    def save(self, fingerprint: str, frames_done: int, last_frame: np.ndarray, records: list[dict],
             extra: dict | None = None, *, in_checkpoint: bool = False) -> None:
        import imageio.v3 as iio

        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dir / "last.png") as tmp:
            iio.imwrite(tmp, last_frame)
        state = {"fingerprint": fingerprint, "frames_done": frames_done, "records": records,
                 "partial": "checkpoint" if in_checkpoint else "output", **(extra or {})}
        with atomic_path(self.dir / "state.json") as tmp:
            tmp.write_text(json.dumps(state))

    def _state(self) -> dict | None:
        try:
            state = json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def load(self, fingerprint: str, shape: tuple[int, ...] | None = None) -> tuple[int, np.ndarray, list[dict], dict]:
        """(frames done, last frame, records, state), each checked: a damaged or foreign checkpoint is a DreamError."""
        import imageio.v3 as iio

        again = "drop --resume to start over"
        state = self._state()
        done = state.get("frames_done") if state else None
        records = state.get("records") if state else None
        if (state is None or not isinstance(state.get("fingerprint"), str) or type(done) is not int or done < 1
                or not isinstance(records, list) or len(records) != done or not all(isinstance(r, dict) for r in records)
                or state.get("partial", "output") not in ("output", "checkpoint")):
            raise DreamError(f"cannot --resume: the checkpoint {str(self.dir / 'state.json')!r} is damaged", again)
        if state["fingerprint"] != fingerprint:
            raise DreamError(
                "cannot --resume: the interrupted render used other settings",
                "rerun with the same input and options, or drop --resume to start over",
            )
        try:
            last = iio.imread(self.dir / "last.png")
        except Exception:
            raise DreamError(f"cannot --resume: the checkpoint image {str(self.dir / 'last.png')!r} is unreadable",
                             again) from None
        if shape is not None and (last.dtype != np.uint8 or last.shape != tuple(shape)):
            got = "x".join(str(n) for n in last.shape)
            want = "x".join(str(n) for n in shape)
            raise DreamError(f"cannot --resume: the checkpoint image is {got} {last.dtype}, not the {want} uint8 "
                             "this render continues from", again)
        self.state = state
        return done, last, records, state

    def begin(self, resume: bool, output: Path, key: str, shape: tuple[int, ...] | None = None, *, factor: int = 1):
        """Where a render starts: (frames done, last frame, records, finished sidecar or None, where frames go).

        A resumed render continues its partial after checking that it holds the checkpoint's frames (with
        ``factor`` - 1 in-betweens after each dreamt one but the last). A new one writes its frames to
        ``output`` unless ``output`` holds something other than this render's partial.
        """
        from .tween import file_frames

        from ..io.outputs import count_frames

        if resume and self.exists():
            start, last, records, state = self.load(key, shape)
            target = self.partial_path() if state.get("partial") == "checkpoint" else output
            again = "drop --resume to start over"
            try:
                n = count_frames(target, check=True)
            except ValueError as err:
                raise DreamError(f"cannot --resume: the partial output {err}", again) from None
            if n != file_frames(start, factor):
                raise DreamError(f"cannot --resume: {str(target)!r} holds {n} frames, the checkpoint recorded "
                                 f"{file_frames(start, factor)}", again)
            return start, last, records, None, target
        if resume and output.exists():
            done = finished_render(output, key)
            if done is not None:
                try:
                    n = count_frames(output)
                except ValueError as err:
                    raise DreamError(f"cannot --resume: {err}", "drop --resume to start over") from None
                if n != done.get("frames"):
                    raise DreamError(f"cannot --resume: {str(output)!r} holds {n} frames, its sidecar says "
                                     f"{done.get('frames')}", "drop --resume to start over")
                return 0, None, [], done, output
            raise DreamError(f"nothing to resume at {str(output)!r}: no interrupted render was recorded",
                             "drop --resume to start over")
        return 0, None, [], None, (self.partial_path() if self._keep_output(factor) else output)

    def _keep_output(self, factor: int = 1) -> bool:
        """Whether ``output`` holds something a new render must not replace before it is complete: anything but
        this render's own partial (as the checkpoint recorded it)."""
        from ..io.outputs import count_frames, has_frames, kind_for

        out = self.output
        if kind_for(out) == "frames":
            if not has_frames(out):
                return False
        elif not (out.exists() or out.is_symlink()):
            return False
        state = self._state()
        if state is None or state.get("partial", "output") != "output":
            return True
        try:
            from .tween import file_frames

            done = state.get("frames_done")
            return count_frames(out) != (file_frames(done, factor) if type(done) is int else done)
        except ValueError:
            return True

    def remove(self) -> None:
        from ..io.outputs import remove_output

        for p in (self.dir / "state.json", self.dir / "last.png", self.partial_path()):
            remove_output(p)
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
