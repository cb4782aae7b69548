"""Outputs on disk: what kind a path is, the frames a finished output holds, and moving, removing and muxing it.

:mod:`dreamreel.io.writer` writes outputs; this module reads and manages them once written. A frames folder
holds ``frame_NNNNNN.png`` files; an MP4 and a GIF are read through ffmpeg (imageio-ffmpeg's binary) and
Pillow. Temporaries are hidden siblings of their target (``.NAME.XXXXXXXX.tmpSUFFIX``), so a rename
publishes them atomically.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import ffmpeg
from .sinks import FRAME_NAME

__all__ = ["kind_for", "frame_files", "new_temp", "mux_audio", "mux_tracks", "read_frames",
           "count_frames", "has_frames", "remove_output", "move_output", "ExistingOutput", "existing_output",
           "FRAME_FILE"]

FRAME_FILE = re.compile(r"^frame_(\d{6,})\.png$")  # the files of a frames folder
_SUFFIX_KIND = {".mp4": "mp4", ".gif": "gif"}

# --------------------------------------------------------------------------- helpers


def new_temp(target: Path, suffix: str, *, directory: bool = False) -> Path:
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


def remove_output(path) -> None:
    """Remove a file or a folder (and what is in it); nothing happens when it is not there."""
    p = Path(path)
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    except FileNotFoundError:
        pass


def frame_files(folder: Path) -> dict[int, Path]:
    out = {}
    if folder.is_dir():
        for entry in os.scandir(folder):
            m = FRAME_FILE.match(entry.name)
            if m and entry.is_file():
                out[int(m.group(1))] = Path(entry.path)
    return out


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
    tmp = new_temp(Path(os.path.abspath(out)), out.suffix)
    try:
        mux_tracks(Path(video_path), Path(audio_source), tmp)
        os.replace(tmp, out)
    except BaseException:
        remove_output(tmp)
        raise
    return True


def mux_tracks(video: Path, audio: Path, out: Path) -> None:
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

    MP4 frames come back at the encoded (even, padded) size. Nothing at ``path`` is a FileNotFoundError
    naming it (not ffmpeg's banner).
    """
    kind = kind_for(path)
    if not (os.path.isdir(path) if kind == "frames" else os.path.isfile(path)):
        raise FileNotFoundError(f"no {'frames folder' if kind == 'frames' else kind.upper()} at {os.fspath(path)!r}")
    if kind == "frames":
        import cv2

        for _, f in sorted(frame_files(Path(path)).items()):
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
        files = frame_files(p)
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
    return bool(frame_files(Path(folder)))


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
    new = frame_files(src)
    for idx, f in sorted(new.items()):
        os.replace(f, dest / f.name)
    for idx, f in frame_files(dest).items():
        if idx not in new:
            f.unlink()
    shutil.rmtree(src, ignore_errors=True)


# --------------------------------------------------------------------------- writer


@dataclass(frozen=True)
class ExistingOutput:
    """An output already at a path that a writer continues (``append=True``)."""

    frames: int
    shape: tuple[int, int] | None  # (H, W) of its frames (None: a frames folder whose last PNG does not decode)
    audio: bool  # an MP4 with an audio track


def existing_output(path: Path, kind: str, fps: float, name=None) -> ExistingOutput | None:
    """What is at ``path`` to continue (None: nothing). An MP4 not written here (not H.264 yuv420p) or at
    another fps is a ValueError naming ``name`` (default ``path``)."""
    name = os.fspath(name if name is not None else path)
    if kind == "frames":
        files = frame_files(path)
        if not files:
            return None
        import cv2

        img = cv2.imdecode(np.fromfile(files[max(files)], dtype=np.uint8), cv2.IMREAD_COLOR)
        return ExistingOutput(max(files) + 1, img.shape[:2] if img is not None else None, False)
    if not path.is_file():
        return None
    if kind == "gif":
        from PIL import Image

        with Image.open(path) as im:
            return ExistingOutput(getattr(im, "n_frames", 1), (im.height, im.width), False)
    info = ffmpeg.probe(path)
    if info["video"] is None or info["codec"] != "h264" or info["pix_fmt"] != "yuv420p":
        raise ValueError(f"cannot append to {name!r}: expected an H.264 yuv420p MP4 "
                         f"(as written here), found {info['codec']} {info['pix_fmt']}")
    old_fps = info["fps"]
    if old_fps and abs(old_fps - float(fps)) > 0.006 + 1e-3 * old_fps:
        raise ValueError(f"cannot append at {fps} fps to {name!r}, which plays at {old_fps} fps")
    w, h = info["video"]
    return ExistingOutput(ffmpeg.count_frames(path), (h, w), info["audio_codec"] is not None)
