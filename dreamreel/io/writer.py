"""Encoder box: stream RGB frames into an MP4, an animated GIF or a folder of PNGs.

The surface is deliberately tiny, in the spirit of ``imageio.v3``::

    with open_writer("zoom.mp4", fps=30) as w:
        for frame in frames:          # HxWx3 uint8 (or float in [0, 1], gray, RGBA)
            w.append(frame)

The output format follows from the path (see :func:`kind_for`).  Nothing here knows
about models: frames in, files out.

Guarantees
----------
* **Streaming.** ``append`` copies the frame onto a bounded queue (``queue_size``); a
  background thread feeds the encoder, so the caller's computation overlaps encoding
  and memory does not grow with the number of frames.  ``append`` blocks while the
  queue is full.  An error in the background thread is re-raised by the next
  ``append``/``close`` in the caller's thread.
* **Atomic.** Everything is written to hidden temporaries next to ``path`` (same
  directory, real suffix kept) and ``os.replace``-d onto ``path`` only by ``close``.
  ``abort`` (or any failure) removes the temporaries and leaves an earlier file at
  ``path`` untouched.  A frames folder is published with one ``rename`` when it is
  new; into an existing folder each ``frame_NNNNNN.png`` is replaced atomically.
* **Quiet.** ffmpeg's output is captured, never printed; its last lines are put into
  the exception when it fails.  ffmpeg runs in its own session, so a Ctrl-C aimed at
  the render does not kill the encoder before ``close`` can finish the file.

ffmpeg is run through :mod:`dreamreel.io.ffmpeg` (imageio-ffmpeg's binary).  Frames are piped to it
directly rather than through ``imageio_ffmpeg.write_frames`` (same rawvideo-on-stdin
command), because that helper sends ffmpeg's stderr to the terminal, ignores its exit
status and cannot stop it promptly on abort.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import queue
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import WRITE_ERRNOS, writing_error
from . import ffmpeg, sinks
from .images import frame_uint8, pad_even
from .outputs import existing_output, frame_files, kind_for, mux_tracks, new_temp, read_frames, remove_output

__all__ = ["FrameWriter", "open_writer"]

log = logging.getLogger(__name__)


def open_writer(
    path,
    *,
    fps: float = 24.0,
    crf: int = 18,
    audio_from: str | os.PathLike | None = None,
    append: bool = False,
    queue_size: int = 8,
    names: str | os.PathLike | None = None,
) -> "FrameWriter":
    """Open a streaming frame writer; the format follows from ``path`` (:func:`kind_for`).

    ``crf`` is the libx264 quality (0 lossless .. 51 worst; MP4 only).  ``audio_from``:
    at close, the audio track of that file is muxed into the MP4 (ignored for GIF and
    frames).  ``append=True`` continues a finished output already at ``path``
    (``writer.frames_before`` tells how many frames it had); without one it is a
    normal open. ``names``: the path an error writing it names (default ``path``; a render's output when ``path``
    is its checkpoint's partial).
    """
    return FrameWriter(path, fps=fps, crf=crf, audio_from=audio_from, append=append,
                       queue_size=queue_size, names=names)



_STOP = object()
_live_writers: set = set()


@atexit.register
def _abort_unclosed_writers() -> None:  # pragma: no cover - interpreter shutdown
    for w in list(_live_writers):
        w.abort()


class FrameWriter:
    """Streaming writer returned by :func:`open_writer`.

    Attributes: ``path`` (the final output), ``kind`` ("mp4" | "gif" | "frames"),
    ``frames_written`` (new frames encoded so far; for append, excludes the old ones),
    ``frames_before`` (frames already in ``path`` that this writer continues).
    """

    def __init__(self, path, *, fps=24.0, crf=18, audio_from=None, append=False, queue_size=8, names=None):
        self.kind = kind_for(path)
        self.path = Path(path)
        self._names = Path(names) if names is not None else self.path
        try:
            ok = math.isfinite(float(fps)) and float(fps) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        fps = fps if isinstance(fps, Fraction) else float(fps)
        if not (0 <= int(crf) <= 51):
            raise ValueError(f"crf must be in 0..51, got {crf!r}")
        if int(queue_size) < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size!r}")
        self.fps = fps
        self.crf = int(crf)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        if self.audio_from is not None and self.kind == "mp4" and not self.audio_from.is_file():
            raise FileNotFoundError(f"audio_from not found: {os.fspath(self.audio_from)!r}")
        self.frames_written = 0
        self.frames_before = 0

        self._abs = Path(os.path.abspath(self.path))
        self._in_shape: tuple[int, int] | None = None  # size of the caller's frames
        self._enc_shape: tuple[int, int] | None = None  # size handed to the encoder
        self._resume = False  # an old output at path is continued
        self._old_audio = False
        if self.kind == "frames" and self._abs.exists() and not self._abs.is_dir():
            raise ValueError(f"{os.fspath(self.path)!r} exists and is not a folder")
        if append:
            old = existing_output(self._abs, self.kind, self.fps, self.path)
            if old is not None:
                self._resume, self.frames_before, self._enc_shape, self._old_audio = True, old.frames, old.shape, old.audio
        # A finished output is only replaced by a complete one: interrupted, this writer keeps the old one.
        self.replaces = not append and (self._abs.is_file() or (self._abs.is_dir() and bool(frame_files(self._abs))))
        self.kept_earlier = False  # set when an interruption discarded this writer's frames for the old output

        self._abs.parent.mkdir(parents=True, exist_ok=True)
        self._temps: list[Path] = []
        if self.kind == "frames":
            self._target = new_temp(self._abs, "", directory=True)
        else:
            self._target = new_temp(self._abs, self._abs.suffix)
        self._temps.append(self._target)

        self._queue: queue.Queue = queue.Queue(maxsize=int(queue_size))
        self._lock = threading.Lock()
        self._sink = None
        self._error: BaseException | None = None
        self._aborting = False
        self._state = "open"  # open -> closed | aborted | failed
        self._appended = 0
        _live_writers.add(self)
        self._thread = threading.Thread(target=self._work, name="dreamreel-encoder", daemon=True)
        self._thread.start()

    # -- background thread -------------------------------------------------------------
    def _open(self, shape: tuple[int, int]) -> bool:
        with self._lock:
            if self._aborting:
                return False
            if self._sink is None:
                self._sink = sinks.open_sink(self.kind, self._target, shape, self.fps, self.crf,
                                        self.frames_before)
            return True

    def _work(self) -> None:
        try:
            if self._resume and self.kind == "gif":
                # GIF has no stream copy: re-read the old frames and write them first.
                for old in read_frames(self._abs):
                    if not self._open(old.shape[:2]):
                        return
                    self._sink.write(np.ascontiguousarray(old))
            while not self._aborting:
                item = self._queue.get()
                if item is _STOP:
                    if self._sink is not None and not self._aborting:
                        self._sink.finish()
                    return
                if not self._open(item.shape[:2]):
                    return
                self._sink.write(item)
                self.frames_written += 1
        except OSError as exc:  # re-raised in the caller's thread, naming the output (not a temp file)
            self._error = writing_error(exc, self._names) if exc.errno in WRITE_ERRNOS else exc
        except BaseException as exc:
            self._error = exc

    # -- caller side ---------------------------------------------------------------------
    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _fail(self) -> None:
        self._discard("failed")
        raise self._error

    @property
    def written(self) -> int:
        """Frames the file holds once closed: those it continues and those appended since (the frame loop's
        wrappers, a --loop's and the in-betweens', say the same of theirs)."""
        return self.frames_before + self._appended

    def append(self, frame) -> None:
        """Queue one frame for encoding (blocks while ``queue_size`` frames are pending)."""
        if self._state != "open":
            if self._state == "failed" and self._error is not None:
                raise self._error
            raise ValueError(f"writer for {os.fspath(self.path)!r} is {self._state}")
        if self._error is not None:
            self._fail()
        a = frame_uint8(frame)
        shape = a.shape[:2]
        if self._in_shape is not None and shape != self._in_shape:
            raise ValueError(f"frame size changed: got {shape[1]}x{shape[0]}, "
                             f"the writer was opened with {self._in_shape[1]}x{self._in_shape[0]} (WxH)")
        if self.kind == "mp4":
            a = pad_even(a)
        if self._in_shape is None and self._enc_shape is not None and a.shape[:2] != tuple(self._enc_shape):
            h, w = self._enc_shape
            raise ValueError(f"frame size {shape[1]}x{shape[0]} does not match the {w}x{h} "
                             f"frames already in {os.fspath(self.path)!r}")
        self._in_shape = shape
        self._enc_shape = a.shape[:2]
        try:
            self._put(a)
        except BaseException:
            if self._error is not None:
                self._fail()
            raise
        self._appended += 1

    def close(self) -> Path:
        """Finish encoding, publish the output at ``path`` atomically and return ``path``."""
        if self._state == "closed":
            return self.path
        if self._state != "open":
            if self._state == "failed" and self._error is not None:
                raise self._error
            raise ValueError(f"writer for {os.fspath(self.path)!r} was {self._state}")
        try:
            self._put(_STOP)
            self._thread.join()
            if self._error is not None:
                raise self._error
            if self._appended == 0:
                if self._resume:  # nothing new: the old output stays as it is
                    self._finish_state("closed")
                    return self.path
                raise ValueError(f"no frames were appended; nothing written to {os.fspath(self.path)!r}")
            try:
                self._publish()
            except OSError as exc:  # ffmpeg's audio mux or a resumed file's join on a full disk
                if exc.errno in WRITE_ERRNOS:
                    raise writing_error(exc, self._names) from None
                raise
        except BaseException:
            self._discard("failed" if self._error is not None else "aborted")
            raise
        self._finish_state("closed")
        return self.path

    def _publish(self) -> None:
        if self.kind == "frames":
            self._publish_folder()
            return
        final = self._target
        if self.kind == "mp4":
            if self._resume:
                joined = self._temp_file()
                # No user path reaches the concat script: it names two symlinks with fixed names in a
                # private folder, and ffmpeg reads it in safe mode (relative, portable names only).
                with tempfile.TemporaryDirectory(prefix="dreamreel-concat-") as work:
                    os.symlink(self._abs, os.path.join(work, "old.mp4"))
                    os.symlink(os.path.abspath(self._target), os.path.join(work, "new.mp4"))
                    # Offset the new segment by the old *video* length: the container's
                    # duration also covers audio, which may run a little longer.
                    old_len = f"duration {self.frames_before / float(self.fps):.6f}\n"
                    listing = os.path.join(work, "list.txt")
                    Path(listing).write_text("file 'old.mp4'\n" + old_len + "file 'new.mp4'\n", encoding="utf-8")
                    ffmpeg.run_checked(["-f", "concat", "-safe", "1", "-i", listing,
                                 "-map", "0:v", "-c", "copy", "-movflags", "+faststart",
                                 os.fspath(joined)], "join the old and new video segments")
                final = joined
            audio = self.audio_from
            if audio is None and self._old_audio:
                audio = self._abs  # keep the resumed file's own soundtrack
            if audio is not None:
                if ffmpeg.probe(audio)["audio_codec"] is not None:
                    muxed = self._temp_file()
                    mux_tracks(final, audio, muxed)
                    final = muxed
                else:
                    log.info("%s has no audio track; %s stays silent", audio, self.path)
        os.replace(final, self._abs)

    def _publish_folder(self) -> None:
        tmp, dest = self._target, self._abs
        if not dest.exists():
            os.replace(tmp, dest)  # one rename publishes the whole folder
            return
        new = frame_files(tmp)
        for idx, f in sorted(new.items()):
            os.replace(f, dest / f.name)
        if not self._resume:  # a fresh render: drop frames left over from an older, longer one
            for idx, f in frame_files(dest).items():
                if idx not in new:
                    f.unlink()

    def _temp_file(self, suffix: str | None = None) -> Path:
        p = new_temp(self._abs, self._abs.suffix if suffix is None else suffix)
        self._temps.append(p)
        return p

    def abort(self) -> None:
        """Stop encoding and discard everything; an earlier file at ``path`` is untouched."""
        if self._state == "open":
            self._discard("aborted")

    def _discard(self, state: str) -> None:
        with self._lock:
            self._aborting = True
            sink = self._sink
        if sink is not None:
            sink.kill()  # unblocks a worker stuck writing to ffmpeg
        while True:  # wake the worker if it waits on an empty queue
            try:
                self._queue.put_nowait(_STOP)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        self._thread.join()
        if self._sink is not None and self._sink is not sink:
            self._sink.kill()
        self._finish_state(state)

    def _finish_state(self, state: str) -> None:
        for p in self._temps:
            remove_output(p)
        self._temps.clear()
        self._state = state
        _live_writers.discard(self)

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._state in ("closed", "aborted"):  # closed/aborted explicitly in the block
            return False
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            # Keep what was rendered so far as a playable file (unless that would replace a finished output at
            # the path), then let Ctrl-C through.
            if self._appended == 0 or self.replaces:
                self.kept_earlier = self.replaces
                self.abort()
            else:
                try:
                    self.close()
                except Exception as err:
                    log.warning("could not finish %s after interrupt: %s", self.path, err)
        else:
            self.abort()
        return False

    def __repr__(self) -> str:
        return (f"FrameWriter({os.fspath(self.path)!r}, kind={self.kind!r}, "
                f"frames_written={self.frames_written}, state={self._state!r})")
