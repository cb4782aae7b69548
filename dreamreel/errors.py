"""The one error type a user sees: a single line, exit code 2, never a traceback."""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable


class DreamError(Exception):
    """Bad input or an unavailable resource, explained in one line (with a hint where one exists)."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


MAX_LINE = 199  # every message line stays under 200 characters

#: OS errors that say why a file could not be written, in the words of the one error line.
WRITE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EFBIG: "file too large"}


def writing_error(exc: OSError, path) -> OSError:
    """``exc``, raised while writing ``path`` (through a temp file, a pipe, ffmpeg), as an OSError naming ``path``:
    the output the user asked for."""
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno or 0), os.fspath(path))


def os_error_message(exc: OSError) -> str:
    """One line for an OS error: ``no space left on device writing 'out.mp4'``, ``Permission denied: 'x'``."""
    if exc.errno in WRITE_ERRNOS:
        return WRITE_ERRNOS[exc.errno] + (f" writing {short_path(exc.filename)}" if exc.filename else "")
    return f"{exc.strerror or exc}{f': {exc.filename!r}' if exc.filename else ''}"


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str | None:
    """A "did you mean ...?" hint for a misspelt name, or None when nothing is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)
    if not close:
        close = [lowered[c] for c in lowered if word.lower() in c][:n]
        return f"did you mean {', '.join(repr(c) for c in close)}?" if close else None
    return f"did you mean {', '.join(repr(lowered[c]) for c in close)}?"


def short_path(path, limit: int = 48) -> str:
    """A path for an error line, quoted; a long one keeps its end (the name the user recognises): '.../b/o.png'."""
    import os

    text = os.fspath(path)
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    return repr("..." + text[len(text) - (limit - 5):])
