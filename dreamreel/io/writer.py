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
import re
import secrets
import shutil
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import WRITE_ERRNOS, writing_error
from . import ffmpeg, sinks
from .sinks import FRAME_NAME

__all__ = ["FrameWriter", "open_writer", "kind_for", "mux_audio", "read_frames", "count_frames", "move_output", "remove_output", "has_frames"]

log = logging.getLogger(__name__)

_FRAME_RE = re.compile(r"^frame_(\d{6,})\.png$")
_SUFFIX_KIND = {".mp4": "mp4", ".gif": "gif"}

# --------------------------------------------------------------------------- helpers


def _new_temp(target: Path, suffix: str, *, directory: bool = False) -> Path:
    """Create a hidden, uniquely named sibling of ``target`` (umask-respecting mode)."""
    stem = target.name if directory else target.stem
    for _ in range(1000):
        tmp = target.parent / f".{stem}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            if directory:
                os.mkdir(tmp)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {target}")


def _remove(p: Path) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    except FileNotFoundError:
        pass


def _frame_files(folder: Path) -> dict[int, Path]:
    out = {}
    if folder.is_dir():
        for entry in os.scandir(folder):
            m = _FRAME_RE.match(entry.name)
            if m and entry.is_file():
                out[int(m.group(1))] = Path(entry.path)
    return out


def _to_rgb_uint8(frame) -> np.ndarray:
    """HxWx3 uint8 copy of ``frame`` (uint8/float in [0,1]/bool; HxW, HxWx1, HxWx3, HxWx4)."""
    if hasattr(frame, "detach"):  # a tensor: duck-typed, no torch import here
        frame = frame.detach().cpu().numpy()
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        raise ValueError(
            f"expected a channels-last HxWx3 frame, got shape {a.shape} "
            "(channels-first? transpose it to HxWxC)"
        )
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 (or HxW, HxWx4) frame, got shape {a.shape}")
    if a.shape[-1] == 4:
        a = a[:, :, :3]  # drop alpha
    if a.dtype == np.uint8:
        a = a.copy()  # the caller may reuse its buffer while we encode in the background
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0)
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(f"integer frame values must be in [0, 255], got [{lo}, {hi}]")
        a = a.astype(np.uint8)
    else:
        raise TypeError(f"unsupported frame dtype {a.dtype}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def _pad_even(a: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: replicate the last row/column instead of cropping."""
    ph, pw = a.shape[0] % 2, a.shape[1] % 2
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return a


# --------------------------------------------------------------------------- public API


def kind_for(path) -> str:
    """Output kind for ``path``: ``"mp4"``, ``"gif"`` or ``"frames"`` (a folder of PNGs).

    A folder is a path ending in a separator, an existing directory, or a name with
    no suffix.  Anything else must end in ``.mp4`` or ``.gif`` (any case).
    """
    raw = os.fspath(path)
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    if raw.endswith(("/", os.sep)) or os.path.isdir(raw):
        return "frames"
    suffix = Path(raw).suffix.lower()
    if suffix == "":
        return "frames"
    if suffix in _SUFFIX_KIND:
        return _SUFFIX_KIND[suffix]
    raise ValueError(
        f"unsupported output {raw!r} ({suffix!r}): use a .mp4 video, a .gif animation, "
        "or a folder for PNG frames (a path ending in '/')"
    )


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


def mux_audio(video_path, audio_source, out_path) -> bool:
    """Put the first audio track of ``audio_source`` into ``video_path``, written to ``out_path``.

    The video stream is copied (never re-encoded); the audio is copied when the
    container accepts its codec, else encoded to AAC.  Audio longer than the video
    is cut at the video's end; the video is never shortened.  ``out_path`` may equal ``video_path``; it is replaced
    atomically.  Returns False, writing nothing, when ``audio_source`` has no audio.
    """
    out = Path(out_path)
    if kind_for(out) != "mp4":
        raise ValueError(f"cannot mux audio into {os.fspath(out)!r}: only .mp4 outputs carry audio")
    if not os.path.isfile(audio_source):
        raise FileNotFoundError(f"audio source not found: {os.fspath(audio_source)!r}")
    if ffmpeg.probe(audio_source)["audio_codec"] is None:
        return False
    tmp = _new_temp(Path(os.path.abspath(out)), out.suffix)
    try:
        _mux(Path(video_path), Path(audio_source), tmp)
        os.replace(tmp, out)
    except BaseException:
        _remove(tmp)
        raise
    return True


def _mux(video: Path, audio: Path, out: Path) -> None:
    # Trim the audio input to the video's length.  (-shortest would instead cut the
    # stream-copied *video* when the audio is the shorter one.)
    duration = ffmpeg.probe(video)["duration"]
    trim = ["-t", f"{duration:.3f}"] if duration else []
    base = ["-i", os.fspath(video), *trim, "-i", os.fspath(audio), "-map", "0:v", "-map", "1:a:0",
            "-c:v", "copy"]
    tail = ["-movflags", "+faststart", os.fspath(out)]
    try:
        ffmpeg.run_checked(base + ["-c:a", "copy"] + tail, "copy the audio track")
    except RuntimeError:  # codec the container does not take: encode to AAC instead
        ffmpeg.run_checked(base + ["-c:a", "aac", "-b:a", "192k"] + tail, "encode the audio track")


def read_frames(path) -> Iterator[np.ndarray]:
    """Yield the frames (HxWx3 uint8) of an MP4, GIF or PNG folder written here.

    MP4 frames come back at the encoded (even, padded) size.
    """
    kind = kind_for(path)
    if kind == "frames":
        import cv2

        for _, f in sorted(_frame_files(Path(path)).items()):
            img = cv2.imdecode(np.fromfile(f, dtype=np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"cannot read frame {f}")
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif kind == "gif":
        from PIL import Image, ImageSequence

        with Image.open(path) as im:
            for fr in ImageSequence.Iterator(im):
                yield np.asarray(fr.convert("RGB"))
    else:
        import imageio_ffmpeg

        gen = imageio_ffmpeg.read_frames(os.fspath(path), pix_fmt="rgb24")
        try:
            w, h = next(gen)["size"]
            for buf in gen:
                yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
        finally:
            gen.close()


def count_frames(path, *, check: bool = False) -> int:
    """Frames in an MP4, GIF or PNG folder written here.

    Without ``check`` a cheap count (MP4 packets, GIF frames, frame files). With ``check`` every frame is
    decoded and a file ffmpeg or Pillow reports damaged (truncated, overwritten) raises ValueError, as does a
    folder whose frames are not numbered 0..n-1 without gaps.
    """
    kind, p = kind_for(path), Path(path)
    if kind == "frames":
        files = _frame_files(p)
        if sorted(files) != list(range(len(files))):
            gap = min(set(range(len(files))) - set(files))
            raise ValueError(f"{FRAME_NAME.format(gap)} is missing from {os.fspath(p)!r}")
        if check:
            from PIL import Image

            for idx, f in sorted(files.items()):
                try:
                    with Image.open(f) as im:
                        im.verify()
                except Exception:
                    raise ValueError(f"{os.fspath(f)!r} is damaged") from None
        return len(files)
    if not p.is_file():
        raise ValueError(f"{os.fspath(p)!r} is missing")
    if kind == "gif":
        from PIL import Image, ImageSequence

        try:
            with Image.open(p) as im:
                if im.format != "GIF":
                    raise ValueError(f"it is {im.format}, not a GIF")
                if not check:
                    return getattr(im, "n_frames", 1)
                n = 0
                for fr in ImageSequence.Iterator(im):
                    fr.load()
                    n += 1
                return n
        except Exception:
            raise ValueError(f"{os.fspath(p)!r} is damaged") from None
    try:
        return ffmpeg.count_frames(p, decode=check)
    except RuntimeError:
        raise ValueError(f"{os.fspath(p)!r} is damaged") from None


def has_frames(folder) -> bool:
    """Whether ``folder`` holds any ``frame_NNNNNN.png`` written here."""
    return bool(_frame_files(Path(folder)))


def remove_output(path) -> None:
    """Remove a file or a folder (and what is in it); nothing happens when it is not there."""
    _remove(Path(path))


def move_output(src, dest) -> None:
    """Move a finished output (file or PNG folder) from ``src`` onto ``dest``, replacing what is there.

    A file is replaced atomically. A folder is renamed when ``dest`` has nothing in it; otherwise each frame is
    replaced atomically, the frames ``src`` lacks are removed, and ``src`` goes.
    """
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        os.replace(src, dest)
        return
    if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
        os.replace(src, dest)
        return
    new = _frame_files(src)
    for idx, f in sorted(new.items()):
        os.replace(f, dest / f.name)
    for idx, f in _frame_files(dest).items():
        if idx not in new:
            f.unlink()
    shutil.rmtree(src, ignore_errors=True)


# --------------------------------------------------------------------------- writer

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
            self._inspect_old()
        # A finished output is only replaced by a complete one: interrupted, this writer keeps the old one.
        self.replaces = not append and (self._abs.is_file() or (self._abs.is_dir() and bool(_frame_files(self._abs))))
        self.kept_earlier = False  # set when an interruption discarded this writer's frames for the old output

        self._abs.parent.mkdir(parents=True, exist_ok=True)
        self._temps: list[Path] = []
        if self.kind == "frames":
            self._target = _new_temp(self._abs, "", directory=True)
        else:
            self._target = _new_temp(self._abs, self._abs.suffix)
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

    # -- resume ---------------------------------------------------------------------
    def _inspect_old(self) -> None:
        p = self._abs
        if self.kind == "frames":
            files = _frame_files(p)
            if files:
                self._resume = True
                self.frames_before = max(files) + 1
                import cv2

                img = cv2.imdecode(np.fromfile(files[max(files)], dtype=np.uint8), cv2.IMREAD_COLOR)
                if img is not None:
                    self._enc_shape = img.shape[:2]
            return
        if not p.is_file():
            return
        self._resume = True
        if self.kind == "gif":
            from PIL import Image

            with Image.open(p) as im:
                self.frames_before = getattr(im, "n_frames", 1)
                self._enc_shape = (im.height, im.width)
            return
        info = ffmpeg.probe(p)
        if info["video"] is None or info["codec"] != "h264" or info["pix_fmt"] != "yuv420p":
            raise ValueError(
                f"cannot append to {os.fspath(self.path)!r}: expected an H.264 yuv420p MP4 "
                f"(as written here), found {info['codec']} {info['pix_fmt']}"
            )
        old_fps = info["fps"]
        if old_fps and abs(old_fps - float(self.fps)) > 0.006 + 1e-3 * old_fps:
            raise ValueError(f"cannot append at {self.fps} fps to {os.fspath(self.path)!r}, "
                             f"which plays at {old_fps} fps")
        self.frames_before = ffmpeg.count_frames(p)
        w, h = info["video"]
        self._enc_shape = (h, w)
        self._old_audio = info["audio_codec"] is not None

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

    def append(self, frame) -> None:
        """Queue one frame for encoding (blocks while ``queue_size`` frames are pending)."""
        if self._state != "open":
            if self._state == "failed" and self._error is not None:
                raise self._error
            raise ValueError(f"writer for {os.fspath(self.path)!r} is {self._state}")
        if self._error is not None:
            self._fail()
        a = _to_rgb_uint8(frame)
        shape = a.shape[:2]
        if self._in_shape is not None and shape != self._in_shape:
            raise ValueError(f"frame size changed: got {shape[1]}x{shape[0]}, "
                             f"the writer was opened with {self._in_shape[1]}x{self._in_shape[0]} (WxH)")
        if self.kind == "mp4":
            a = _pad_even(a)
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
                    _mux(final, audio, muxed)
                    final = muxed
                else:
                    log.info("%s has no audio track; %s stays silent", audio, self.path)
        os.replace(final, self._abs)

    def _publish_folder(self) -> None:
        tmp, dest = self._target, self._abs
        if not dest.exists():
            os.replace(tmp, dest)  # one rename publishes the whole folder
            return
        new = _frame_files(tmp)
        for idx, f in sorted(new.items()):
            os.replace(f, dest / f.name)
        if not self._resume:  # a fresh render: drop frames left over from an older, longer one
            for idx, f in _frame_files(dest).items():
                if idx not in new:
                    f.unlink()

    def _temp_file(self, suffix: str | None = None) -> Path:
        p = _new_temp(self._abs, self._abs.suffix if suffix is None else suffix)
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
            _remove(p)
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
