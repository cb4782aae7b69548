"""The one place dreamreel runs ffmpeg: the binary, its command line, its process, and reading its header dump.

ffmpeg is imageio-ffmpeg's binary. Every call runs it in its own session (a Ctrl-C or SIGTERM aimed at the
render reaches Python only, so a writer can still finish a playable file), with stdin closed and its output
captured, never printed; a failure carries ffmpeg's last lines. imageio-ffmpeg ships no ffprobe, so streams
and durations come from ``ffmpeg -i``'s header dump (:func:`probe`, :func:`duration_in`).
"""

from __future__ import annotations

import os
import re
import subprocess

__all__ = ["exe", "command", "run", "run_checked", "popen", "probe", "duration_in", "count_frames", "tail"]

TAIL_LINES = 15


def exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def isolation() -> dict:
    """Popen keywords that keep ffmpeg out of the terminal's process group (Ctrl-C must reach Python only)."""
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def command(args: list[str], loglevel: str | None = "error") -> list[str]:
    """``ffmpeg -hide_banner -nostdin [-loglevel L] ARGS``; ``loglevel=None`` keeps ffmpeg's own (the header dump)."""
    return [exe(), "-hide_banner", "-nostdin", *(["-loglevel", loglevel] if loglevel else []), *args]


def run(args: list[str], *, loglevel: str | None = "error", timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg to the end; stdout and stderr captured as bytes (``subprocess.TimeoutExpired`` past ``timeout``)."""
    return subprocess.run(command(args, loglevel), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                          **isolation())


def run_checked(args: list[str], what: str) -> None:
    """Run ffmpeg writing an output (``-y``); a RuntimeError naming ``what`` and ffmpeg's last lines if it fails."""
    proc = run(["-y", *args], loglevel="warning")
    if proc.returncode != 0:
        raise failure(what, proc.returncode, proc.stderr)


def failure(what: str, returncode: int, stderr: str | bytes) -> Exception:
    """The exception for an ffmpeg that failed to ``what``: an OSError when it could not write (a full disk: its
    log says so, and it exits with AVERROR(ENOSPC), 256 - 28), else a RuntimeError with its last lines."""
    import errno

    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    for code, words in ((errno.ENOSPC, "No space left on device"), (errno.EDQUOT, "Disk quota exceeded"),
                        (errno.EROFS, "Read-only file system")):
        if words in text or returncode == 256 - code:
            return OSError(code, os.strerror(code))
    return RuntimeError(f"ffmpeg failed to {what} (exit {returncode}):\n{tail(text)}")


def popen(args: list[str], *, loglevel: str | None = "error", **kwargs) -> subprocess.Popen:
    """Start ffmpeg streaming (frames on a pipe); the caller owns the process."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(command(args, loglevel), **kwargs, **isolation())


def tail(text: str | bytes, n: int = TAIL_LINES) -> str:
    """The last ``n`` non-blank lines of ffmpeg's log."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-n:])


_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")


def duration_in(header: str) -> float | None:
    """The container duration in seconds from an ``ffmpeg -i`` header dump (None for ``N/A``)."""
    m = _DURATION_RE.search(header)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def probe(path: os.PathLike | str) -> dict:
    """The first video stream's size, codec, pixel format and fps, the first audio codec and the duration of a
    media file; a ValueError when ffmpeg finds neither video nor audio in it."""
    text = run(["-i", os.fspath(path)], loglevel=None).stderr.decode("utf-8", "replace")
    info: dict = {"video": None, "codec": None, "pix_fmt": None, "fps": None, "audio_codec": None,
                  "duration": duration_in(text)}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("Stream #"):
            continue
        if " Video: " in line and info["video"] is None:
            desc = line.split(" Video: ", 1)[1]
            info["codec"] = desc.split()[0].strip(",")
            m = re.match(r"[^,]*, ([A-Za-z0-9_]+)", desc)
            info["pix_fmt"] = m.group(1) if m else None
            m = re.search(r", (\d+)x(\d+)", desc)
            if m:
                info["video"] = (int(m.group(1)), int(m.group(2)))
            m = re.search(r"([\d.]+) fps", desc)
            info["fps"] = float(m.group(1)) if m else None
        elif " Audio: " in line and info["audio_codec"] is None:
            info["audio_codec"] = line.split(" Audio: ", 1)[1].split()[0].strip(",")
    if info["video"] is None and info["audio_codec"] is None:
        raise ValueError(f"{os.fspath(path)!r} is not a readable media file:\n{tail(text)}")
    return info


def count_frames(path: os.PathLike | str, *, decode: bool = False) -> int:
    """The first video stream's frames: counted from its packets (stream copy), or by decoding every frame
    (``decode``: any decoder message then counts as damage). A RuntimeError when ffmpeg cannot tell."""
    copy = [] if decode else ["-c", "copy"]
    proc = run(["-progress", "pipe:1", "-i", os.fspath(path), "-map", "0:v:0", *copy, "-f", "null", "-"])
    counts = re.findall(rb"^frame=\s*(\d+)", proc.stdout, flags=re.M)
    if proc.returncode != 0 or not counts or (decode and proc.stderr.strip()):
        raise RuntimeError(f"ffmpeg could not count the frames of {os.fspath(path)!r}:\n{tail(proc.stderr)}")
    return int(counts[-1])
