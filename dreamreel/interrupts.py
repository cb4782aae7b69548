"""Ctrl-C and SIGTERM: the first one stops the work, later ones never cut its cleanup short.

``install()`` (the CLI calls it) routes SIGINT and SIGTERM to one handler: the first signal raises
``KeyboardInterrupt`` (SIGINT) or :class:`Terminated` (SIGTERM, what ``kill``, Docker, systemd, Slurm and Ray
send; a ``KeyboardInterrupt`` too, so every ``except KeyboardInterrupt`` that keeps finished work handles it),
and every later one is ignored: the process is already stopping, and a second Ctrl-C 10 ms after the first must
not abort the code that is finishing the output and writing its checkpoint.

Two blocks shape where a signal may land:

* ``held()``: a signal is deferred to the end of the block, then raised. The frame loop holds the few lines
  that hand a frame to the writer and count it, so the count always equals the frames the writer got.
* ``finishing()``: a signal is dropped. Publishing a finished output and its sidecar runs in one; a Ctrl-C
  then arrives after the work is done, so the run ends as finished.

Without ``install()`` (the Python API) both still guard SIGINT in the main thread.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["Terminated", "install", "reassert", "uninstall", "exiting", "held", "finishing", "terminated",
           "exit_code"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (exit status 143)."""


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"stopping": None, "held": 0, "pending": None, "drop": 0}
_previous: dict = {}


def _exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum, frame):
    if _state["stopping"] is not None:
        return  # already stopping: let the cleanup finish
    if _state["drop"]:
        return  # the work is finished; only its files are being published
    if _state["held"]:
        _state["pending"] = _state["pending"] or signum
        return
    _state["stopping"] = signum
    raise _exception(signum)


def install() -> None:
    """Route SIGINT and SIGTERM through the one handler (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state.update(stopping=None, held=0, pending=None, drop=0)
    for sig in _SIGNALS:
        prev = signal.signal(sig, _handler)
        if prev is not _handler:
            _previous[sig] = prev


def reassert() -> None:
    """Put the one handler back where a library replaced it (``ray.init`` installs a SIGTERM handler that exits
    with status 15, and a C++ one that prints a stack dump): a no-op unless ``install()`` was called."""
    if threading.current_thread() is not threading.main_thread() or not _previous:
        return
    for sig in _SIGNALS:
        signal.signal(sig, _handler)  # also when Python's record says ours: a C handler may sit below it


def uninstall() -> None:
    """Restore the handlers ``install`` replaced, unless a signal arrived: a stopping process keeps ignoring
    further ones until it has exited (a second Ctrl-C during interpreter shutdown would otherwise kill it)."""
    if threading.current_thread() is not threading.main_thread() or _state["stopping"] is not None:
        return
    for sig, prev in list(_previous.items()):
        if signal.getsignal(sig) is _handler:
            signal.signal(sig, prev)
        del _previous[sig]


def exiting() -> None:
    """The process is about to exit: ignore any further signal (handled or not, the work is over).

    SIG_IGN rather than the handler: the interpreter's finalisation puts every Python-level handler back to the
    default (terminate), so a Ctrl-C in its last moments would otherwise kill the process after its report."""
    if threading.current_thread() is threading.main_thread() and _ours():
        _state["stopping"] = _state["stopping"] or 0
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def terminated(exc: BaseException) -> bool:
    """``exc`` stops the work because of SIGTERM: a :class:`Terminated`, or a plain ``KeyboardInterrupt`` raised
    while the handler's SIGTERM was being delivered (Ray turns any exception of a signal handler that fires inside
    its calls into a new ``KeyboardInterrupt``)."""
    if isinstance(exc, Terminated):
        return True
    return isinstance(exc, KeyboardInterrupt) and _state["stopping"] == signal.SIGTERM and _ours()


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (128 + the signal number, as shells report them)."""
    return 128 + (signal.SIGTERM if terminated(exc) else signal.SIGINT)


def _ours() -> bool:
    return signal.getsignal(signal.SIGINT) is _handler


@contextmanager
def _guard(key: str, reraise: bool):
    main = threading.current_thread() is threading.main_thread()
    if main and _ours():
        _state[key] += 1
        try:
            yield
        finally:
            _state[key] -= 1
        if reraise and not _state["held"] and _state["pending"] is not None and _state["stopping"] is None:
            signum, _state["pending"] = _state["pending"], None
            _state["stopping"] = signum
            raise _exception(signum)
        return
    if not main:
        yield
        return
    got: list[int] = []
    prev = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if prev is None else prev)  # None: not set from Python
    if reraise and got and callable(prev) and prev not in (signal.SIG_IGN, signal.SIG_DFL):
        prev(signal.SIGINT, None)  # what the signal would have done, now that the block is done
    elif reraise and got and prev == signal.SIG_DFL:
        raise KeyboardInterrupt


def held():
    """Defer SIGINT/SIGTERM to the end of the block, then raise it there."""
    return _guard("held", True)


def finishing():
    """Drop SIGINT/SIGTERM during the block (the work is done; its files are being published)."""
    return _guard("drop", False)
